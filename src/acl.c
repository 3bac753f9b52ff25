/*-------------------------------------------------------------------------
 *
 * acl.c
 *	  Per-queue privileges, named after AWS's actions.
 *
 * Who may do what to a queue:
 *	- a superuser, and any role that has the privileges of the queue's
 *	  owner (the role that created it), may do everything;
 *	- any other role needs the action granted by msgq.add_permission(),
 *	  to itself, to a role it is a member of (with inheritance), or to
 *	  PUBLIC.
 * Creating a queue needs EXECUTE on msgq.create_queue(), which the install
 * script revokes from PUBLIC; a DBA grants it.
 *
 * Grants are stored as aclitem[] (msgq.queue_permission.acl, one row per
 * label, concatenated into msgq.queue.acl), so pg_dump writes them with
 * role names and a restore maps them to the roles of the same name, never
 * to whatever role happens to have the old oid.  aclitem has no bits of
 * its own for queue actions, so each action borrows one table privilege
 * bit; the letters show in the stored aclitem text:
 *
 *	SendMessage				a (INSERT)		ReceiveMessage		r (SELECT)
 *	DeleteMessage			d (DELETE)		ChangeMessageVisibility	w (UPDATE)
 *	PurgeQueue				D (TRUNCATE)	GetQueueAttributes	x (REFERENCES)
 *	SetQueueAttributes		t (TRIGGER)		DeleteQueue			X (EXECUTE)
 *
 * Roles are referenced by oid (owner is a regrole, aclitem holds oids), so
 * a role that owns a queue or appears in a grant must not be dropped: a
 * ProcessUtility hook refuses DROP ROLE for such a role, as PostgreSQL
 * refuses to drop the owner of a table.  It can only see the current
 * database; the README tells to clean up queues in every database first.
 *
 * IDENTIFICATION
 *	  src/acl.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "access/xact.h"
#include "utils/builtins.h"

#include "msgq.h"

typedef struct AclActionName
{
	const char *name;
	AclMode		mode;
} AclActionName;

static const AclActionName acl_actions[] = {
	{"SendMessage", MSGQ_ACT_SEND},
	{"ReceiveMessage", MSGQ_ACT_RECEIVE},
	{"DeleteMessage", MSGQ_ACT_DELETE},
	{"ChangeMessageVisibility", MSGQ_ACT_CHANGE_VIS},
	{"PurgeQueue", MSGQ_ACT_PURGE},
	{"GetQueueAttributes", MSGQ_ACT_GET_ATTRS},
	{"GetQueueUrl", MSGQ_ACT_GET_ATTRS},
	{"SetQueueAttributes", MSGQ_ACT_SET_ATTRS},
	{"DeleteQueue", MSGQ_ACT_DELETE_QUEUE},
	{"*", MSGQ_ACT_ALL},
	{NULL, 0}
};

/* Topics' actions (add_permission with a topic ARN) borrow the same bits */
static const AclActionName acl_topic_actions[] = {
	{"Publish", MSGQ_TOPIC_PUBLISH},
	{"Subscribe", MSGQ_TOPIC_SUBSCRIBE},
	{"ListSubscriptionsByTopic", MSGQ_TOPIC_LIST_SUBSCRIPTIONS},
	{"GetTopicAttributes", MSGQ_TOPIC_GET_ATTRS},
	{"SetTopicAttributes", MSGQ_TOPIC_SET_ATTRS},
	{"DeleteTopic", MSGQ_TOPIC_DELETE},
	{"*", MSGQ_TOPIC_ALL},
	{NULL, 0}
};

/*
 * Does roleid hold action on a queue owned by owner with the given acl?
 */
bool
msgq_queue_action_allowed(Oid roleid, Oid owner, Acl *acl, AclMode action)
{
	if (superuser_arg(roleid) || has_privs_of_role(roleid, owner))
		return true;
	if (acl == NULL)
		return false;
	return aclmask(acl, roleid, owner, action, ACLMASK_ANY) != 0;
}

/*
 * Raise AccessDenied unless the calling user (the user before any switch
 * to the extension owner) may perform action on queue.
 */
void
msgq_check_queue_action(MsgqQueue *queue, Oid roleid, AclMode action,
						const char *action_name)
{
	if (!msgq_queue_action_allowed(roleid, queue->owner, queue->acl, action))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied for queue \"%s\"", queue->queue_name),
				 errdetail_internal("AWS error code: AccessDenied"),
				 errhint("The action %s must be granted with msgq.add_permission().",
						 action_name)));
}

void
msgq_check_queue_owner(MsgqQueue *queue, Oid roleid)
{
	if (!superuser_arg(roleid) && !has_privs_of_role(roleid, queue->owner))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("must be owner of queue \"%s\"", queue->queue_name),
				 errdetail_internal("AWS error code: AccessDenied")));
}

/*
 * Turn an array of AWS action names into privilege bits.
 */
static AclMode
acl_parse_actions(ArrayType *actions, const AclActionName *table, const char *service,
				  const char *kind, const char *valid)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	AclMode		mode = 0;

	deconstruct_array(actions, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter Actions");
	if (n > 7)
		MSGQ_ERROR("OverLimit", ERRCODE_MSGQ_OVER_LIMIT,
				   "at most 7 actions can be granted at once, got %d", n);

	for (i = 0; i < n; i++)
	{
		char	   *name;
		const AclActionName *a;

		if (nulls[i])
			MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
					   "action names must not be null");
		name = TextDatumGetCString(elems[i]);
		/* AWS also accepts the service prefix ("SQS:", "SNS:") */
		if (pg_strncasecmp(name, service, 4) == 0)
			name += 4;
		for (a = table; a->name; a++)
			if (strcmp(a->name, name) == 0)
				break;
		if (a->name == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("unrecognized %s action: \"%s\"", kind, name),
					 errdetail_internal("AWS error code: InvalidParameterValue"),
					 errhint("Valid actions are %s.", valid)));
		mode |= a->mode;
	}
	return mode;
}

AclMode
msgq_parse_actions(ArrayType *actions)
{
	return acl_parse_actions(actions, acl_actions, "SQS:", "queue",
							 "SendMessage, ReceiveMessage, DeleteMessage, ChangeMessageVisibility, PurgeQueue, GetQueueAttributes, GetQueueUrl, SetQueueAttributes, DeleteQueue and *");
}

AclMode
msgq_parse_topic_actions(ArrayType *actions)
{
	return acl_parse_actions(actions, acl_topic_actions, "SNS:", "topic",
							 "Publish, Subscribe, ListSubscriptionsByTopic, GetTopicAttributes, SetTopicAttributes, DeleteTopic and *");
}

/*
 * Build the aclitem[] that grants mode to each named role, with grantor
 * as the grantor.  "public" (any case) names PUBLIC.
 */
Acl *
msgq_build_acl(ArrayType *roles, AclMode mode, Oid grantor)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	Acl		   *acl;
	AclItem    *items;

	deconstruct_array(roles, TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	if (n == 0)
		MSGQ_ERROR("MissingParameter", ERRCODE_MSGQ_MISSING_PARAMETER,
				   "the request must contain the parameter AWSAccountIds");

	acl = (Acl *) palloc0(ARR_OVERHEAD_NONULLS(1) + n * sizeof(AclItem));
	SET_VARSIZE(acl, ARR_OVERHEAD_NONULLS(1) + n * sizeof(AclItem));
	acl->ndim = 1;
	acl->dataoffset = 0;
	acl->elemtype = ACLITEMOID;
	ARR_LBOUND(acl)[0] = 1;
	ARR_DIMS(acl)[0] = n;
	items = ACL_DAT(acl);

	for (i = 0; i < n; i++)
	{
		char	   *name;
		Oid			grantee;

		if (nulls[i])
			MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
					   "role names must not be null");
		name = TextDatumGetCString(elems[i]);
		if (pg_strcasecmp(name, "public") == 0)
			grantee = ACL_ID_PUBLIC;
		else
		{
			grantee = get_role_oid(name, true);
			if (!OidIsValid(grantee))
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
						 errmsg("role \"%s\" does not exist", name),
						 errdetail_internal("AWS error code: InvalidParameterValue")));
		}
		items[i].ai_grantee = grantee;
		items[i].ai_grantor = grantor;
		ACLITEM_SET_PRIVS_GOPTIONS(items[i], mode, ACL_NO_RIGHTS);
	}
	return acl;
}

static ProcessUtility_hook_type acl_prev_utility_hook = NULL;

/*
 * Refuse to drop a role that owns a queue or a stream of this database or
 * appears in one of a queue's grants.
 */
static void
acl_check_drop_roles(DropRoleStmt *stmt)
{
	ListCell   *lc;
	Oid			save_userid;
	int			save_sec_context;
	int			save_nest;
	bool		connected = false;

	foreach(lc, stmt->roles)
	{
		RoleSpec   *spec = lfirst(lc);
		Oid			roleid;
		Oid			argtypes[1] = {OIDOID};
		Datum		values[1];
		bool		isnull;

		if (spec->roletype != ROLESPEC_CSTRING)
			continue;
		roleid = get_role_oid(spec->rolename, true);
		if (!OidIsValid(roleid))
			continue;

		if (!connected)
		{
			msgq_switch_to_owner(&save_userid, &save_sec_context, &save_nest);
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "SPI_connect failed");
			connected = true;
		}
		values[0] = ObjectIdGetDatum(roleid);
		if (SPI_execute_with_args("SELECT q.queue_name FROM msgq.queue q"
								  " WHERE q.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
								  "    OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(q.acl) a"
								  "                WHERE a.grantee OPERATOR(pg_catalog.=) $1"
								  "                   OR a.grantor OPERATOR(pg_catalog.=) $1)"
								  " ORDER BY q.queue_name LIMIT 1",
								  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for queues of a role");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("role \"%s\" cannot be dropped because msgq queues depend on it",
							spec->rolename),
					 errdetail("The role owns or holds permissions on queue \"%s\".",
							   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc,
																 1, &isnull))),
					 errhint("Delete its queues and remove its permissions with msgq.remove_permission() first.")));
		if (SPI_execute_with_args("SELECT t.topic_name FROM msgq.topic t"
								  " WHERE t.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
								  "    OR EXISTS (SELECT 1 FROM pg_catalog.aclexplode(t.acl) a"
								  "                WHERE a.grantee OPERATOR(pg_catalog.=) $1)"
								  "    OR EXISTS (SELECT 1 FROM msgq.subscription s"
								  "                WHERE s.topic_id OPERATOR(pg_catalog.=) t.topic_id"
								  "                  AND s.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1)"
								  " ORDER BY t.topic_name LIMIT 1",
								  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for topics of a role");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("role \"%s\" cannot be dropped because msgq topics depend on it",
							spec->rolename),
					 errdetail("The role owns topic \"%s\", one of its subscriptions, or holds permissions on it.",
							   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc,
																 1, &isnull))),
					 errhint("Delete its topics with msgq.delete_topic() and its subscriptions with msgq.unsubscribe() first.")));
		if (SPI_execute_with_args("SELECT s.stream_name FROM msgq.stream s"
								  " WHERE s.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1"
								  " ORDER BY s.stream_name LIMIT 1",
								  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not look for streams of a role");
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
					 errmsg("role \"%s\" cannot be dropped because msgq streams depend on it",
							spec->rolename),
					 errdetail("The role owns stream \"%s\".",
							   TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc,
																 1, &isnull))),
					 errhint("Delete its streams with msgq.delete_stream() first.")));
	}
	if (connected)
	{
		SPI_finish();
		msgq_restore_user(save_userid, save_sec_context, save_nest);
	}
}

static void
acl_utility_hook(PlannedStmt *pstmt, const char *queryString,
				 bool readOnlyTree, ProcessUtilityContext context,
				 ParamListInfo params, QueryEnvironment *queryEnv,
				 DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;

	if (IsA(parsetree, DropRoleStmt) && IsTransactionState() &&
		OidIsValid(get_extension_oid(MSGQ_EXTENSION_NAME, true)))
		acl_check_drop_roles((DropRoleStmt *) parsetree);

	if (acl_prev_utility_hook)
		acl_prev_utility_hook(pstmt, queryString, readOnlyTree, context,
							  params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

void
msgq_acl_install_hooks(void)
{
	acl_prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = acl_utility_hook;
}

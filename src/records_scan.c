/*-------------------------------------------------------------------------
 *
 * records_scan.c
 *	  get_records in FROM as a custom scan that streams its rows.
 *
 * A set-returning function in FROM is run to its end before its first row
 * is returned: PostgreSQL's function scan puts every row into a
 * tuplestore and then reads them back.  For get_records that means up to
 * 10,000 records copied out of their pages, formed into rows, stored and
 * read again, and a client that gets the whole result in one burst after
 * a pause, instead of rows as they are read (which costs a client that
 * serves several connections from one thread more than the server saves:
 * see bench/RESULTS.md, get_records at 4 clients).
 *
 * This planner hook gives a function scan of msgq.get_records a custom
 * scan instead.  The scan makes the same read as the function (stream.c,
 * msgq_records_scan_begin: every check, the throughput limits, the
 * metrics and the next iterator, which every row carries and which needs
 * the whole read), but keeps only where each record's row is; then it
 * returns the rows one at a time, each fetched from its page when its turn
 * comes, with no copy.  Rows, errors and side effects are the function's.
 *
 * The hook steps aside, leaving the function scan, when:
 *	- msgq.records_scan is off;
 *	- the function is not msgq_get_records itself (fmgr_info() says which
 *	  C function a call reaches, so a SECURITY DEFINER or SET clause on it,
 *	  which fmgr wraps, is left to fmgr), or has been made STRICT;
 *	- the scan has WITH ORDINALITY or several functions (ROWS FROM);
 *	- its arguments refer to another relation of the query (LATERAL);
 *	- the query asks for the whole row.
 *
 * A rescan with changed parameters reads the stream again, as the function
 * scan calls its function again; without, it returns the same rows again,
 * as the function scan rereads its tuplestore.  EXECUTE on the function is
 * checked when the scan starts, as for a function call, and each read is
 * counted as a call in pg_stat_user_functions (track_functions = all), its
 * time being the read's, not the rows' that follow.
 *
 * IDENTIFICATION
 *	  src/records_scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/extensible.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "pgstat.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "msgq.h"

bool		msgq_records_scan_enabled = true;

static set_rel_pathlist_hook_type prev_set_rel_pathlist_hook = NULL;

/* the last function asked about, and whether it is get_records */
static Oid	known_funcid = InvalidOid;
static bool known_is_ours = false;

typedef struct RecordsScanState
{
	CustomScanState css;
	Oid			funcid;
	FmgrInfo	flinfo;			/* the function's, for track_functions */
	List	   *args;			/* ExprStates of the iterator and the limit */
	MsgqRecordsScan *scan;
	bool		started;
} RecordsScanState;

static void records_begin(CustomScanState *node, EState *estate, int eflags);
static TupleTableSlot *records_exec(CustomScanState *node);
static void records_end(CustomScanState *node);
static void records_rescan(CustomScanState *node);
static Node *records_create_state(CustomScan *cscan);
static Plan *records_plan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
						  List *tlist, List *clauses, List *custom_plans);

static const CustomPathMethods records_path_methods = {
	.CustomName = "msgq get_records",
	.PlanCustomPath = records_plan,
};

static const CustomScanMethods records_scan_methods = {
	.CustomName = "msgq get_records",
	.CreateCustomScanState = records_create_state,
};

static const CustomExecMethods records_exec_methods = {
	.CustomName = "msgq get_records",
	.BeginCustomScan = records_begin,
	.ExecCustomScan = records_exec,
	.EndCustomScan = records_end,
	.ReScanCustomScan = records_rescan,
};

static void
records_proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	known_funcid = InvalidOid;
}

/* Does a call of funcid reach msgq_get_records directly? */
static bool
is_get_records(Oid funcid)
{
	FmgrInfo	finfo;

	if (funcid == known_funcid)
		return known_is_ours;
	fmgr_info(funcid, &finfo);
	known_funcid = funcid;
	/* a strict function (ALTER FUNCTION) returns no rows for a null argument */
	known_is_ours = finfo.fn_addr == msgq_get_records && !finfo.fn_strict;
	return known_is_ours;
}

/* Is the whole row of rel used, in its output or its own conditions? */
static bool
needs_whole_row(RelOptInfo *rel)
{
	Bitmapset  *attrs = NULL;
	ListCell   *lc;

	pull_varattnos((Node *) rel->reltarget->exprs, rel->relid, &attrs);
	foreach(lc, rel->baserestrictinfo)
		pull_varattnos((Node *) ((RestrictInfo *) lfirst(lc))->clause, rel->relid, &attrs);
	return bms_is_member(InvalidAttrNumber - FirstLowInvalidHeapAttributeNumber, attrs);
}

static void
records_set_rel_pathlist(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;
	CustomPath *cpath;
	Path	   *fpath;

	if (prev_set_rel_pathlist_hook)
		prev_set_rel_pathlist_hook(root, rel, rti, rte);

	if (!msgq_records_scan_enabled || rte->rtekind != RTE_FUNCTION ||
		rel->reloptkind != RELOPT_BASEREL || rte->funcordinality ||
		list_length(rte->functions) != 1 || rel->pathlist == NIL)
		return;
	rtfunc = linitial_node(RangeTblFunction, rte->functions);
	if (!IsA(rtfunc->funcexpr, FuncExpr) ||
		list_length(((FuncExpr *) rtfunc->funcexpr)->args) != 2 ||
		!is_get_records(((FuncExpr *) rtfunc->funcexpr)->funcid))
		return;
	if (!bms_is_empty(rel->lateral_relids) || needs_whole_row(rel))
		return;

	fpath = (Path *) linitial(rel->pathlist);
	cpath = makeNode(CustomPath);
	cpath->path.pathtype = T_CustomScan;
	cpath->path.parent = rel;
	cpath->path.pathtarget = rel->reltarget;
	cpath->path.param_info = NULL;
	cpath->path.parallel_aware = false;
	cpath->path.parallel_safe = false;
	cpath->path.parallel_workers = 0;
	cpath->path.rows = rel->rows;
	/* the function scan's cost, but rows from the first on */
	cpath->path.startup_cost = 0;
	cpath->path.total_cost = fpath->total_cost;
	cpath->path.pathkeys = NIL;
	cpath->flags = 0;
	cpath->methods = &records_path_methods;

	/* the function scan goes: this scan is the one way to read the rel */
	rel->pathlist = NIL;
	rel->partial_pathlist = NIL;
	add_path(rel, &cpath->path);
}

/*
 * The plan: no scan relation (a function has none), the function's seven
 * columns as the scan's tuple, the function call itself kept in
 * custom_exprs for its arguments.
 */
static Plan *
records_plan(PlannerInfo *root, RelOptInfo *rel, CustomPath *best_path,
			 List *tlist, List *clauses, List *custom_plans)
{
	RangeTblEntry *rte = planner_rt_fetch(rel->relid, root);
	RangeTblFunction *rtfunc = linitial_node(RangeTblFunction, rte->functions);
	CustomScan *cscan = makeNode(CustomScan);
	TupleDesc	desc;
	List	   *scan_tlist = NIL;
	int			i;

	desc = get_expr_result_tupdesc(rtfunc->funcexpr, false);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Var		   *var = makeVar(rel->relid, i + 1, att->atttypid, att->atttypmod,
								  att->attcollation, 0);

		scan_tlist = lappend(scan_tlist,
							 makeTargetEntry((Expr *) var, i + 1,
											 pstrdup(NameStr(att->attname)), false));
	}

	cscan->scan.plan.targetlist = tlist;
	cscan->scan.plan.qual = extract_actual_clauses(clauses, false);
	cscan->scan.scanrelid = 0;
	cscan->flags = best_path->flags;
	cscan->custom_plans = NIL;
	cscan->custom_exprs = list_make1(copyObject(rtfunc->funcexpr));
	cscan->custom_private = NIL;
	cscan->custom_scan_tlist = scan_tlist;
	cscan->custom_relids = bms_make_singleton(rel->relid);
	cscan->methods = &records_scan_methods;
	return &cscan->scan.plan;
}

static Node *
records_create_state(CustomScan *cscan)
{
	RecordsScanState *state = (RecordsScanState *) newNode(sizeof(RecordsScanState),
														   T_CustomScanState);

	state->css.methods = &records_exec_methods;
	return (Node *) state;
}

static void
records_begin(CustomScanState *node, EState *estate, int eflags)
{
	RecordsScanState *state = (RecordsScanState *) node;
	CustomScan *cscan = (CustomScan *) node->ss.ps.plan;
	FuncExpr   *fexpr = linitial_node(FuncExpr, cscan->custom_exprs);
	AclResult	aclresult;

	/* as a call of the function checks */
	aclresult = pg_proc_aclcheck(fexpr->funcid, GetUserId(), ACL_EXECUTE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FUNCTION, get_func_name(fexpr->funcid));
	InvokeFunctionExecuteHook(fexpr->funcid);

	state->funcid = fexpr->funcid;
	state->args = ExecInitExprList(fexpr->args, &node->ss.ps);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		fmgr_info_cxt(fexpr->funcid, &state->flinfo, estate->es_query_cxt);
		state->scan = msgq_records_scan_create(estate->es_query_cxt);
	}
	state->started = false;
}

/* Evaluate the arguments and read the stream. */
static void
records_start(RecordsScanState *state)
{
	ExprContext *econtext = state->css.ss.ps.ps_ExprContext;
	ExprState  *it_state = linitial(state->args);
	ExprState  *limit_state = lsecond(state->args);
	LOCAL_FCINFO(fcinfo, 0);
	PgStat_FunctionCallUsage fcu;
	MemoryContext old;
	Datum		it;
	Datum		limit;
	bool		it_null;
	bool		limit_null;
	int32		lim;

	ResetExprContext(econtext);
	old = MemoryContextSwitchTo(econtext->ecxt_per_tuple_memory);
	it = ExecEvalExpr(it_state, econtext, &it_null);
	limit = ExecEvalExpr(limit_state, econtext, &limit_null);
	lim = limit_null ? 0 : DatumGetInt32(limit);

	/* counted as a call of the function (track_functions = all), the read timed */
	InitFunctionCallInfoData(*fcinfo, &state->flinfo, 0, InvalidOid, NULL, NULL);
	pgstat_init_function_usage(fcinfo, &fcu);
	msgq_records_scan_begin(state->scan, it_null ? NULL : TextDatumGetCString(it),
							limit_null ? NULL : &lim);
	pgstat_end_function_usage(&fcu, true);
	MemoryContextSwitchTo(old);
	state->started = true;
}

static TupleTableSlot *
records_next(ScanState *ss)
{
	RecordsScanState *state = (RecordsScanState *) ss;
	TupleTableSlot *slot = ss->ss_ScanTupleSlot;

	if (!state->started)
		records_start(state);
	ExecClearTuple(slot);
	if (!msgq_records_scan_next(state->scan, slot->tts_values, slot->tts_isnull))
		return slot;
	return ExecStoreVirtualTuple(slot);
}

static bool
records_recheck(ScanState *ss, TupleTableSlot *slot)
{
	return true;
}

static TupleTableSlot *
records_exec(CustomScanState *node)
{
	return ExecScan(&node->ss, records_next, records_recheck);
}

static void
records_end(CustomScanState *node)
{
	RecordsScanState *state = (RecordsScanState *) node;

	if (state->scan != NULL)
		msgq_records_scan_end(state->scan);
}

static void
records_rescan(CustomScanState *node)
{
	RecordsScanState *state = (RecordsScanState *) node;

	ExecScanReScan(&node->ss);
	if (node->ss.ps.chgParam != NULL)
	{
		/* the arguments may have changed: read again when asked */
		msgq_records_scan_end(state->scan);
		state->started = false;
	}
	else if (state->started)
		msgq_records_scan_rewind(state->scan);
}

void
msgq_records_scan_define_gucs(void)
{
	DefineCustomBoolVariable("msgq.records_scan",
							 "Reads get_records in FROM with a scan that streams its rows.",
							 "Off: get_records in FROM is a function scan, whose rows "
							 "are all made before the first is returned.",
							 &msgq_records_scan_enabled,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

void
msgq_records_scan_install_hooks(void)
{
	RegisterCustomScanMethods(&records_scan_methods);
	CacheRegisterSyscacheCallback(PROCOID, records_proc_changed, (Datum) 0);
	prev_set_rel_pathlist_hook = set_rel_pathlist_hook;
	set_rel_pathlist_hook = records_set_rel_pathlist;
}

/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PG_VERSION_NUM difference msgq meets, in one place.  msgq
 *	  targets PostgreSQL 15; newer APIs are used only through these shims.
 *
 * IDENTIFICATION
 *	  src/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_COMPAT_H
#define MSGQ_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "msgq requires PostgreSQL 15 or later"
#endif

/* Custom wait-event names arrived in PostgreSQL 17; before that, one generic event. */
#if PG_VERSION_NUM >= 170000
#define MSGQ_WAIT_EVENT(name)	WaitEventExtensionNew(name)
#else
#define MSGQ_WAIT_EVENT(name)	PG_WAIT_EXTENSION
#endif

/* Ownership checks were unified in PostgreSQL 16. */
#if PG_VERSION_NUM >= 160000
#define msgq_database_ownercheck(dboid, roleid) \
	object_ownercheck(DatabaseRelationId, (dboid), (roleid))
#else
#define msgq_database_ownercheck(dboid, roleid) \
	pg_database_ownercheck((dboid), (roleid))
#endif

/* Backend ids became proc numbers in PostgreSQL 17. */
#if PG_VERSION_NUM >= 170000
#define MSGQ_MY_BACKEND_ID		(MyProcNumber + 1)
#else
#define MSGQ_MY_BACKEND_ID		MyBackendId
#endif

/*
 * JSON parser callbacks return an error code from PostgreSQL 16 on, and
 * lexer contexts are made differently from 17 on.
 */
#if PG_VERSION_NUM >= 160000
#define MSGQ_JSON_CB_TYPE		JsonParseErrorType
#define MSGQ_JSON_CB_DONE		return JSON_SUCCESS
#else
#define MSGQ_JSON_CB_TYPE		void
#define MSGQ_JSON_CB_DONE		return
#endif
#if PG_VERSION_NUM >= 170000
#define msgq_json_lex(json, len) \
	makeJsonLexContextCstringLen(NULL, (json), (len), GetDatabaseEncoding(), true)
#else
#define msgq_json_lex(json, len) \
	makeJsonLexContextCstringLen((json), (len), GetDatabaseEncoding(), true)
#endif

/* Wait event sets belong to a resource owner from PostgreSQL 17 on. */
#if PG_VERSION_NUM >= 170000
#define msgq_create_wait_event_set(n)	CreateWaitEventSet(NULL, (n))
#else
#define msgq_create_wait_event_set(n)	CreateWaitEventSet(CurrentMemoryContext, (n))
#endif

#endif							/* MSGQ_COMPAT_H */

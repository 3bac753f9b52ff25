/*-------------------------------------------------------------------------
 *
 * access_key.h
 *	  The AWS endpoint's access-key secrets, encrypted at rest (access_key.c).
 *
 * IDENTIFICATION
 *	  src/access_key.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef MSGQ_ACCESS_KEY_H
#define MSGQ_ACCESS_KEY_H

#include "msgq.h"

/* the key-encryption key's file, in the data directory */
#define MSGQ_ACCESS_KEY_FILE	"msgq_endpoint.key"

extern bytea *msgq_access_key_seal(const char *access_key_id, const char *secret);
extern char *msgq_access_key_open(const char *access_key_id, const bytea *sealed,
								  int elevel);
extern char *msgq_access_key_secret(const char *access_key_id, Oid *role);
extern Oid	msgq_access_key_manage(const MsgqCall *call, const char *access_key_id,
								   const char *verb, bytea **sealed);

#endif							/* MSGQ_ACCESS_KEY_H */

/*-------------------------------------------------------------------------
 *
 * access_key.c
 *	  The AWS endpoint's access-key secrets, encrypted at rest.
 *
 * SigV4 signatures are HMACs: the endpoint needs each secret in clear to
 * check them.  msgq.endpoint_credential keeps the secrets encrypted with a
 * key that is not in the database: 32 random bytes in the data directory's
 * msgq_endpoint.key, made (mode 0600) by the first msgq.create_access_key.
 * A dump, a copy of the table or a base backup's tables reveal no secret
 * without that file; losing it makes every access key useless.
 *
 * Encrypt-then-MAC with HMAC-SHA256 alone, which PostgreSQL has without
 * further dependencies.  Two keys are derived from the file's: one to
 * encrypt, one to authenticate.  Each secret gets a random 16-byte nonce;
 * its keystream is HMAC(enc, nonce || counter), block after block (counter
 * mode), XORed with the secret; the tag is HMAC(mac, length of the access
 * key id || the id || nonce || ciphertext), so neither a changed byte nor a
 * secret moved to another key's row opens.  Stored as bytea:
 * nonce || ciphertext || tag.
 *
 * The HMAC contexts need a resource owner: all of this runs in a
 * transaction.  No secret, plaintext or key material goes into a message.
 *
 * IDENTIFICATION
 *	  src/access_key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"

#include "access_key.h"
#include "msgq.h"

#define AK_KEY_LEN		32
#define AK_NONCE_LEN	16
#define AK_BLOCK_LEN	PG_SHA256_DIGEST_LENGTH
#define AK_TAG_LEN		PG_SHA256_DIGEST_LENGTH

/* the keys derived from the key file's */
typedef struct AkKeys
{
	uint8		enc[AK_KEY_LEN];
	uint8		mac[AK_KEY_LEN];
} AkKeys;

/* this process's copy, for the endpoint's requests */
static AkKeys ak_cache;
static bool ak_cache_valid = false;

/* HMAC-SHA256 with key over the n parts */
static void
ak_hmac(const uint8 *key, int n, const void *const *parts, const size_t *lens, uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;
	int			i;

	ok = ctx != NULL && pg_hmac_init(ctx, key, AK_KEY_LEN) == 0;
	for (i = 0; ok && i < n; i++)
		ok = pg_hmac_update(ctx, parts[i], lens[i]) == 0;
	ok = ok && pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) == 0;
	if (!ok)
	{
		const char *why = ctx ? pg_hmac_error(ctx) : "out of memory";

		pg_hmac_free(ctx);
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute an HMAC: %s", why)));
	}
	pg_hmac_free(ctx);
}

/*
 * Read the key file into key.  NULL when done, or why it is unusable (it
 * does not exist, or has the wrong size); an I/O error is an ERROR.
 */
static const char *
ak_read_key_file(uint8 *key)
{
	uint8		buf[AK_KEY_LEN + 1];
	int			fd;
	ssize_t		n;

	fd = OpenTransientFile(MSGQ_ACCESS_KEY_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" does not exist";
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
	}
	n = read(fd, buf, sizeof(buf));
	if (n < 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
	}
	CloseTransientFile(fd);
	memcpy(key, buf, AK_KEY_LEN);
	explicit_bzero(buf, sizeof(buf));
	if (n != AK_KEY_LEN)
		return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" is not 32 bytes long";
	return NULL;
}

/*
 * Make the key file: 32 random bytes, written and synced under a name of
 * this process's, then linked to the key file's name.  A link, not a
 * rename: a key file that another backend made meanwhile is kept (and
 * used), never replaced, so no secret is ever sealed with a lost key.
 */
static void
ak_create_key_file(void)
{
	char		tmp[MAXPGPATH];
	uint8		key[AK_KEY_LEN];
	int			fd;
	int			save_errno;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create the key file \"%s\" during recovery", MSGQ_ACCESS_KEY_FILE),
				 errhint("Copy it from the primary server.")));
	if (!pg_strong_random(key, sizeof(key)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", MSGQ_ACCESS_KEY_FILE, MyProcPid);
	(void) unlink(tmp);			/* a crashed process's of the same pid */
	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	errno = 0;
	if (write(fd, key, AK_KEY_LEN) != AK_KEY_LEN || pg_fsync(fd) != 0)
	{
		save_errno = errno ? errno : ENOSPC;
		CloseTransientFile(fd);
		(void) unlink(tmp);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	explicit_bzero(key, sizeof(key));
	if (CloseTransientFile(fd) != 0 ||
		(link(tmp, MSGQ_ACCESS_KEY_FILE) != 0 && errno != EEXIST))
	{
		save_errno = errno;
		(void) unlink(tmp);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
	}
	(void) unlink(tmp);
	/* the link is durable before any secret sealed with the key commits */
	(void) fsync_fname_ext(".", true, false, ERROR);
}

/*
 * The keys of the key file (made first if create and it does not exist);
 * NULL when done, or why the file is unusable.  They are kept for this
 * process too.
 */
static const char *
ak_load(AkKeys *k, bool create)
{
	static const char enc_label[] = "msgq access key secrets: encryption";
	static const char mac_label[] = "msgq access key secrets: authentication";
	uint8		key[AK_KEY_LEN];
	const char *why;

	why = ak_read_key_file(key);
	if (why != NULL && create && access(MSGQ_ACCESS_KEY_FILE, F_OK) != 0 && errno == ENOENT)
	{
		ak_create_key_file();
		why = ak_read_key_file(key);
	}
	if (why == NULL)
	{
		ak_hmac(key, 1, (const void *[]) {enc_label}, (size_t[]) {strlen(enc_label)}, k->enc);
		ak_hmac(key, 1, (const void *[]) {mac_label}, (size_t[]) {strlen(mac_label)}, k->mac);
		ak_cache = *k;
		ak_cache_valid = true;
	}
	explicit_bzero(key, sizeof(key));
	return why;
}

/* out = in XOR the keystream of nonce, len bytes */
static void
ak_crypt(const AkKeys *k, const uint8 *nonce, const uint8 *in, uint8 *out, size_t len)
{
	uint8		block[AK_BLOCK_LEN];
	size_t		off;
	uint32		counter = 0;

	for (off = 0; off < len; off += AK_BLOCK_LEN, counter++)
	{
		uint8		be[4] = {counter >> 24, counter >> 16, counter >> 8, counter};
		size_t		i;

		ak_hmac(k->enc, 2, (const void *[]) {nonce, be}, (size_t[]) {AK_NONCE_LEN, sizeof(be)}, block);
		for (i = 0; i < AK_BLOCK_LEN && off + i < len; i++)
			out[off + i] = in[off + i] ^ block[i];
	}
	explicit_bzero(block, sizeof(block));
}

/* The tag of nonce || ciphertext (len bytes at data) for access_key_id */
static void
ak_tag(const AkKeys *k, const char *access_key_id, const uint8 *data, size_t len, uint8 *tag)
{
	uint32		n = strlen(access_key_id);
	uint8		be[4] = {n >> 24, n >> 16, n >> 8, n};

	ak_hmac(k->mac, 3, (const void *[]) {be, access_key_id, data},
			(size_t[]) {sizeof(be), n, len}, tag);
}

/*
 * The secret of access_key_id, sealed for msgq.endpoint_credential: the key
 * file is read (made if there is none) at each call, as keys are made
 * seldom and a replaced key file must not go on being used.
 */
bytea *
msgq_access_key_seal(const char *access_key_id, const char *secret)
{
	size_t		len = strlen(secret);
	bytea	   *sealed = palloc(VARHDRSZ + AK_NONCE_LEN + len + AK_TAG_LEN);
	uint8	   *p = (uint8 *) VARDATA(sealed);
	AkKeys		k;
	const char *why;

	SET_VARSIZE(sealed, VARHDRSZ + AK_NONCE_LEN + len + AK_TAG_LEN);
	why = ak_load(&k, true);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("cannot encrypt the access key's secret: %s", why),
				 errhint("Remove the file only if no access key is needed any more: a new key file is made then.")));
	if (!pg_strong_random(p, AK_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	ak_crypt(&k, p, (const uint8 *) secret, p + AK_NONCE_LEN, len);
	ak_tag(&k, access_key_id, p, AK_NONCE_LEN + len, p + AK_NONCE_LEN + len);
	explicit_bzero(&k, sizeof(k));
	return sealed;
}

/*
 * The secret of access_key_id from its sealed form, or, when it does not
 * open (a changed row, another key file, none), a message at elevel and
 * NULL.  The keys are this process's copy; when they fail, the key file is
 * read again, in case it was replaced.
 */
char *
msgq_access_key_open(const char *access_key_id, const bytea *sealed, int elevel)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(sealed);
	size_t		size = VARSIZE_ANY_EXHDR(sealed);
	size_t		len = size > AK_NONCE_LEN + AK_TAG_LEN ? size - AK_NONCE_LEN - AK_TAG_LEN : 0;
	uint8		tag[AK_TAG_LEN];
	AkKeys		k;
	const char *why = NULL;
	bool		cached = ak_cache_valid;
	char	   *secret = NULL;

	if (len == 0)
		why = "the stored secret is too short";
	else if (cached)
		k = ak_cache;
	else
		why = ak_load(&k, false);
	while (why == NULL)
	{
		ak_tag(&k, access_key_id, p, AK_NONCE_LEN + len, tag);
		if (timingsafe_bcmp(tag, p + AK_NONCE_LEN + len, AK_TAG_LEN) == 0)
		{
			secret = palloc(len + 1);
			ak_crypt(&k, p, p + AK_NONCE_LEN, (uint8 *) secret, len);
			secret[len] = '\0';
			break;
		}
		why = "it does not authenticate: the row was changed, or the key file is not the one it was encrypted with";
		if (cached)
		{
			/* once more with the key file as it is now */
			cached = false;
			why = ak_load(&k, false);
		}
	}
	explicit_bzero(&k, sizeof(k));
	if (secret == NULL)
		ereport(elevel,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the secret of access key \"%s\" cannot be decrypted", access_key_id),
				 errdetail_internal("AWS error code: InvalidClientTokenId. Reason: %s.", why),
				 errhint("The key file is \"%s\" in the data directory; msgq.create_access_key makes a new access key.",
						 MSGQ_ACCESS_KEY_FILE)));
	return secret;
}

/*
 * The row of access key id, with SPI connected (locked if lock): false if
 * there is none.
 */
static bool
ak_fetch(const char *id, bool lock, Oid *role, bytea **sealed)
{
	bool		isnull;

	/* planned once per process: the endpoint runs it for every request */
	static SPIPlanPtr plans[2];

	if (SPI_execute_plan(msgq_plan(&plans[lock ? 1 : 0], lock ?
								   "SELECT role::pg_catalog.oid, encrypted_secret FROM msgq.endpoint_credential"
								   " WHERE access_key_id OPERATOR(pg_catalog.=) $1 FOR UPDATE" :
								   "SELECT role::pg_catalog.oid, encrypted_secret FROM msgq.endpoint_credential"
								   " WHERE access_key_id OPERATOR(pg_catalog.=) $1",
								   1, (Oid[]) {TEXTOID}),
						 (Datum[]) {CStringGetTextDatum(id)}, NULL, !lock, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the access keys");
	if (SPI_processed == 0)
		return false;
	*role = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*sealed = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	return true;
}

/*
 * For the endpoint, in a transaction with SPI connected: the secret and
 * role of access_key_id, NULL when it has none or its secret does not open
 * (a WARNING says why).
 */
char *
msgq_access_key_secret(const char *access_key_id, Oid *role)
{
	bytea	   *sealed;

	if (!ak_fetch(access_key_id, false, role, &sealed))
		return NULL;
	return msgq_access_key_open(access_key_id, sealed, WARNING);
}

/*
 * For msgq's functions on one key, after msgq_call_enter: its row, locked;
 * its role returned, its sealed secret in *sealed (if not NULL).  An error
 * if there is no such key or the caller may not verb it (superusers and
 * the role's members may).
 */
Oid
msgq_access_key_manage(const MsgqCall *call, const char *access_key_id,
					   const char *verb, bytea **sealed)
{
	const char *id = access_key_id ? access_key_id : "";
	Oid			role;
	bytea	   *stored;

	if (!ak_fetch(id, true, &role, &stored))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_NOT_FOUND),
				 errmsg("access key %s does not exist", id),
				 errdetail_internal("AWS error code: NoSuchEntity")));
	if (!superuser_arg(call->caller) && !has_privs_of_role(call->caller, role))
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_ACCESS_DENIED),
				 errmsg("permission denied to %s access key %s", verb, id),
				 errdetail_internal("AWS error code: AccessDenied")));
	if (sealed != NULL)
		*sealed = stored;
	return role;
}

/*
 * msgq.check_access_key(access_key_id text): an error unless the key's
 * secret decrypts and authenticates with this server's key file (after a
 * restore elsewhere, say).  Never shows the secret.
 */
PG_FUNCTION_INFO_V1(msgq_check_access_key);
Datum
msgq_check_access_key(PG_FUNCTION_ARGS)
{
	char	   *id = msgq_text_arg(fcinfo, 0);
	MsgqCall	call;
	bytea	   *sealed;
	char	   *secret;

	msgq_call_enter(&call);
	(void) msgq_access_key_manage(&call, id, "check", &sealed);
	secret = msgq_access_key_open(id, sealed, ERROR);
	explicit_bzero(secret, strlen(secret));
	msgq_call_leave(&call);
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * access_key.c
 *	  The AWS endpoint's access-key secrets, encrypted at rest.
 *
 * SigV4 signatures are HMACs: the endpoint needs each secret in clear to
 * check them.  msgq.endpoint_credential keeps the secrets encrypted with a
 * key that is not in the database: the data directory's msgq_endpoint.key,
 * made (mode 0600) by the first msgq.create_access_key.  A dump, a copy of
 * the table or a base backup's tables reveal no secret without that file;
 * losing it makes every access key useless.
 *
 * The key file holds one key or several, newest first.  One key is the
 * file's whole content, 32 random bytes (the only format before rotation
 * existed, and still the one written for a single key, so that a file
 * with one key reads the same everywhere).  Several are a list:
 *
 *		"MSGQKEYS" | version (1) | count | count keys of 32 bytes | CRC-32C
 *
 * (integers 4 bytes, big-endian; the CRC covers everything before it), so
 * 20 + 32 * count bytes, never 32.  A secret is always encrypted with the
 * newest key; opening one tries the keys in order, and the tag says which
 * opens it.
 *
 * Encrypt-then-MAC with HMAC-SHA256 alone, which PostgreSQL has without
 * further dependencies.  Two keys are derived from each of the file's: one
 * to encrypt, one to authenticate.  Each secret gets a random 16-byte
 * nonce; its keystream is HMAC(enc, nonce || counter), block after block
 * (counter mode), XORed with the secret; the tag is HMAC(mac, length of
 * the access key id || the id || nonce || ciphertext), so neither a
 * changed byte nor a secret moved to another key's row opens.  Stored as
 * bytea: nonce || ciphertext || tag.
 *
 * Rotation (superusers): msgq.rotate_access_key_encryption() checks that
 * every row opens, writes the file anew with a new random key in front
 * (temporary file, fsync, durable_rename: the file is durable before any
 * row is rewritten), then re-encrypts every row with the new key in the
 * caller's transaction; if that rolls back, the rows are as they were and
 * their key is still in the file.  msgq.retire_access_key_encryption()
 * keeps only the newest key, once every committed row opens with it.
 *
 * Locking.  The file is the cluster's, the rows are each database's: who
 * reads the file to encrypt with it (create_access_key) holds a lock of
 * msgq's own, not tied to a database, in share mode until its transaction
 * ends; rotate and retire hold it in exclusive mode, so they wait for
 * those transactions and make new ones wait, and never run two at once
 * anywhere in the cluster.  They also lock msgq.endpoint_credential in
 * SHARE ROW EXCLUSIVE mode, against any other writer of the table.  So
 * the rows that retire checks, in a snapshot taken after both locks, are
 * all the committed rows of its database, and none written with an older
 * key can commit after it.  Retire refuses to run in a transaction that
 * has written the table (a rotation, say): which of its row versions
 * commit, and which older ones a rollback (of a savepoint too) brings
 * back, is not decided yet.  Both see their own database only: access
 * keys in another database of the cluster are neither re-encrypted nor
 * checked (README: run them in the endpoint's database).
 *
 * Every process keeps the derived keys of the file as it last read it,
 * with the file's identity (device, inode, size, modification and change
 * times).  Before using them it stats the file, and reads it again if it
 * is another (rotate and retire rename a new file into place); should
 * everything match by chance (a reused inode within a clock tick), a
 * secret that opens with none of the kept keys makes it read the file
 * once more before giving up.  Encrypting always reads the file.
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

#include "access/table.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "access_key.h"
#include "msgq.h"

#define AK_KEY_LEN		32
#define AK_NONCE_LEN	16
#define AK_BLOCK_LEN	PG_SHA256_DIGEST_LENGTH
#define AK_TAG_LEN		PG_SHA256_DIGEST_LENGTH

/* the key file as a list of keys */
#define AK_MAX_KEYS		16		/* rotations before a retire is needed */
#define AK_MAGIC		"MSGQKEYS"
#define AK_MAGIC_LEN	8
#define AK_VERSION		1
#define AK_HEADER_LEN	(AK_MAGIC_LEN + 4 + 4)
#define AK_LIST_LEN(n)	(AK_HEADER_LEN + (n) * AK_KEY_LEN + 4)

/* advisory tags of msgq's own (database 0: the key file is the cluster's) */
#define AK_LOCK_FIELD4	8

/* the key file's keys, newest first */
typedef struct AkRawKeys
{
	int			n;
	uint8		key[AK_MAX_KEYS][AK_KEY_LEN];
} AkRawKeys;

/* the keys derived from one of the key file's */
typedef struct AkKeys
{
	uint8		enc[AK_KEY_LEN];
	uint8		mac[AK_KEY_LEN];
} AkKeys;

/* which file the keys were read from */
typedef struct AkFileId
{
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
	struct timespec ctime;
} AkFileId;

/* this process's copy of the key file's derived keys, newest first */
static AkKeys ak_cache[AK_MAX_KEYS];
static int	ak_cache_n = 0;
static AkFileId ak_cache_id;
static bool ak_cache_valid = false;

static const char *const ak_no_key =
"it does not authenticate with any key of the key file: the row was changed, or the key file is not one it was encrypted with";

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

static uint32
ak_get32(const uint8 *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | p[3];
}

static void
ak_put32(uint8 *p, uint32 v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static pg_crc32c
ak_crc(const uint8 *data, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, data, len);
	FIN_CRC32C(crc);
	return crc;
}

/* The keys of the key file's content (len bytes at buf), or why not */
static const char *
ak_parse(const uint8 *buf, size_t len, AkRawKeys *raw)
{
	uint32		count;

	raw->n = 0;
	if (len == AK_KEY_LEN)
	{
		memcpy(raw->key[0], buf, AK_KEY_LEN);
		raw->n = 1;
		return NULL;
	}
	if (len < AK_LIST_LEN(1) || memcmp(buf, AK_MAGIC, AK_MAGIC_LEN) != 0)
		return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" is neither one key of 32 bytes nor a list of msgq's keys";
	if (ak_get32(buf + AK_MAGIC_LEN) != AK_VERSION)
		return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" is a list of keys of an unknown version";
	count = ak_get32(buf + AK_MAGIC_LEN + 4);
	if (count < 1 || count > AK_MAX_KEYS || len != AK_LIST_LEN(count))
		return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" does not hold the number of keys its header says";
	if (ak_crc(buf, len - 4) != ak_get32(buf + len - 4))
		return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" is damaged: its checksum does not match";
	memcpy(raw->key, buf + AK_HEADER_LEN, count * AK_KEY_LEN);
	raw->n = count;
	return NULL;
}

static void
ak_file_id(const struct stat *st, AkFileId *id)
{
	memset(id, 0, sizeof(*id));
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

static bool
ak_file_id_equal(const AkFileId *a, const AkFileId *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
		a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/*
 * Read the key file's keys into raw, and what file it is into id.  NULL
 * when done, or why the file is unusable: it does not exist (*missing
 * then), or is not a key file; an I/O error is an ERROR.
 */
static const char *
ak_read_key_file(AkRawKeys *raw, AkFileId *id, bool *missing)
{
	uint8		buf[AK_LIST_LEN(AK_MAX_KEYS) + 1];
	size_t		len = 0;
	struct stat st;
	int			fd;
	const char *why;

	raw->n = 0;
	*missing = false;
	fd = OpenTransientFile(MSGQ_ACCESS_KEY_FILE, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
		{
			*missing = true;
			return "the key file \"" MSGQ_ACCESS_KEY_FILE "\" does not exist";
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
	}
	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		CloseTransientFile(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
	}
	while (len < sizeof(buf))
	{
		ssize_t		n = read(fd, buf + len, sizeof(buf) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			int			save_errno = errno;

			explicit_bzero(buf, sizeof(buf));
			CloseTransientFile(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", MSGQ_ACCESS_KEY_FILE)));
		}
		if (n == 0)
			break;
		len += n;
	}
	CloseTransientFile(fd);
	why = ak_parse(buf, len, raw);
	explicit_bzero(buf, sizeof(buf));
	ak_file_id(&st, id);
	return why;
}

/* A write of the key file failed (errno tells why): remove its temporary file */
static void
pg_attribute_noreturn()
ak_write_failed(const char *tmp, const char *what, const char *path)
{
	int			save_errno = errno;

	(void) unlink(tmp);
	errno = save_errno;
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s file \"%s\": %m", what, path)));
}

/*
 * Write the key file with raw's keys: to a file of this process's name,
 * synced, then put in place.  replace: renamed over the key file
 * (durable_rename), for rotate and retire, which hold the key file's lock
 * exclusively.  Otherwise linked to the key file's name, which keeps a key
 * file that another backend made meanwhile (and uses it): making the
 * first key file, several sessions may try at once, and no secret must
 * ever be sealed with a lost key.
 */
static void
ak_write_key_file(const AkRawKeys *raw, bool replace)
{
	uint8		buf[AK_LIST_LEN(AK_MAX_KEYS)];
	size_t		len;
	char		tmp[MAXPGPATH];
	int			fd;

	Assert(raw->n >= 1 && raw->n <= AK_MAX_KEYS);
	if (raw->n == 1)
	{
		/* one key: the file of 32 bytes, as before rotation existed */
		memcpy(buf, raw->key[0], AK_KEY_LEN);
		len = AK_KEY_LEN;
	}
	else
	{
		len = AK_LIST_LEN(raw->n);
		memcpy(buf, AK_MAGIC, AK_MAGIC_LEN);
		ak_put32(buf + AK_MAGIC_LEN, AK_VERSION);
		ak_put32(buf + AK_MAGIC_LEN + 4, raw->n);
		memcpy(buf + AK_HEADER_LEN, raw->key, raw->n * AK_KEY_LEN);
		ak_put32(buf + len - 4, ak_crc(buf, len - 4));
	}

	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", MSGQ_ACCESS_KEY_FILE, MyProcPid);
	(void) unlink(tmp);			/* a crashed process's of the same pid */
	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
	{
		explicit_bzero(buf, sizeof(buf));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	}
	errno = 0;
	if (write(fd, buf, len) != len || pg_fsync(fd) != 0)
	{
		int			save_errno = errno ? errno : ENOSPC;

		explicit_bzero(buf, sizeof(buf));
		CloseTransientFile(fd);
		errno = save_errno;
		ak_write_failed(tmp, "write", tmp);
	}
	explicit_bzero(buf, sizeof(buf));
	if (CloseTransientFile(fd) != 0)
		ak_write_failed(tmp, "close", tmp);

	if (replace)
	{
		/* syncs both files and the directory */
		PG_TRY();
		{
			(void) durable_rename(tmp, MSGQ_ACCESS_KEY_FILE, ERROR);
		}
		PG_CATCH();
		{
			(void) unlink(tmp);
			PG_RE_THROW();
		}
		PG_END_TRY();
		return;
	}
	if (link(tmp, MSGQ_ACCESS_KEY_FILE) != 0 && errno != EEXIST)
		ak_write_failed(tmp, "create", MSGQ_ACCESS_KEY_FILE);
	(void) unlink(tmp);
	/* the link is durable before any secret sealed with the key commits */
	(void) fsync_fname_ext(".", true, false, ERROR);
}

/* Make the key file, with one random key */
static void
ak_create_key_file(void)
{
	AkRawKeys	raw;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create the key file \"%s\" during recovery", MSGQ_ACCESS_KEY_FILE),
				 errhint("Copy it from the primary server.")));
	raw.n = 1;
	if (!pg_strong_random(raw.key[0], AK_KEY_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	ak_write_key_file(&raw, false);
	explicit_bzero(&raw, sizeof(raw));
}

static void
ak_cache_clear(void)
{
	explicit_bzero(ak_cache, sizeof(ak_cache));
	ak_cache_n = 0;
	ak_cache_valid = false;
}

/* This process's copy: the keys derived from raw's, read from file id */
static void
ak_cache_set(const AkRawKeys *raw, const AkFileId *id)
{
	static const char enc_label[] = "msgq access key secrets: encryption";
	static const char mac_label[] = "msgq access key secrets: authentication";
	int			i;

	ak_cache_clear();
	for (i = 0; i < raw->n; i++)
	{
		ak_hmac(raw->key[i], 1, (const void *[]) {enc_label}, (size_t[]) {strlen(enc_label)},
				ak_cache[i].enc);
		ak_hmac(raw->key[i], 1, (const void *[]) {mac_label}, (size_t[]) {strlen(mac_label)},
				ak_cache[i].mac);
	}
	ak_cache_n = raw->n;
	ak_cache_id = *id;
	ak_cache_valid = true;
}

/* Whether this process's copy is of the key file as it is now */
static bool
ak_cache_current(void)
{
	struct stat st;
	AkFileId	id;

	if (!ak_cache_valid || stat(MSGQ_ACCESS_KEY_FILE, &st) != 0)
		return false;
	ak_file_id(&st, &id);
	return ak_file_id_equal(&id, &ak_cache_id);
}

/*
 * Read the key file (made first if create and it does not exist) into this
 * process's copy: NULL when done, or why the file is unusable (and then
 * the copy is empty).
 */
static const char *
ak_load(bool create)
{
	AkRawKeys	raw;
	AkFileId	id;
	bool		missing;
	const char *why;

	why = ak_read_key_file(&raw, &id, &missing);
	if (why != NULL && missing && create)
	{
		ak_create_key_file();
		why = ak_read_key_file(&raw, &id, &missing);
	}
	if (why == NULL)
		ak_cache_set(&raw, &id);
	else
		ak_cache_clear();
	explicit_bzero(&raw, sizeof(raw));
	return why;
}

/* The key file's lock (see the header), held until the transaction ends */
static void
ak_lock_key_file(LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, InvalidOid, 0, 0, AK_LOCK_FIELD4);
	(void) LockAcquire(&tag, mode, false, false);
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

/* secret sealed for access_key_id with k */
static bytea *
ak_seal(const AkKeys *k, const char *access_key_id, const char *secret)
{
	size_t		len = strlen(secret);
	bytea	   *sealed = palloc(VARHDRSZ + AK_NONCE_LEN + len + AK_TAG_LEN);
	uint8	   *p = (uint8 *) VARDATA(sealed);

	SET_VARSIZE(sealed, VARHDRSZ + AK_NONCE_LEN + len + AK_TAG_LEN);
	if (!pg_strong_random(p, AK_NONCE_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	ak_crypt(k, p, (const uint8 *) secret, p + AK_NONCE_LEN, len);
	ak_tag(k, access_key_id, p, AK_NONCE_LEN + len, p + AK_NONCE_LEN + len);
	return sealed;
}

/*
 * Which of this process's keys opens the sealed secret of access_key_id:
 * its place (0 for the newest), -1 for none.  *len is the secret's length
 * (0: too short to be a sealed secret).
 */
static int
ak_which_key(const char *access_key_id, const bytea *sealed, size_t *len)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(sealed);
	size_t		size = VARSIZE_ANY_EXHDR(sealed);
	uint8		tag[AK_TAG_LEN];
	int			i;

	*len = size > AK_NONCE_LEN + AK_TAG_LEN ? size - AK_NONCE_LEN - AK_TAG_LEN : 0;
	if (*len == 0)
		return -1;
	for (i = 0; i < ak_cache_n; i++)
	{
		ak_tag(&ak_cache[i], access_key_id, p, AK_NONCE_LEN + *len, tag);
		if (timingsafe_bcmp(tag, p + AK_NONCE_LEN + *len, AK_TAG_LEN) == 0)
			return i;
	}
	return -1;
}

/* The secret of a sealed secret of len bytes that key i opens */
static char *
ak_unseal(int i, const bytea *sealed, size_t len)
{
	const uint8 *p = (const uint8 *) VARDATA_ANY(sealed);
	char	   *secret = palloc(len + 1);

	ak_crypt(&ak_cache[i], p, p + AK_NONCE_LEN, (uint8 *) secret, len);
	secret[len] = '\0';
	return secret;
}

/*
 * The secret of access_key_id, sealed for msgq.endpoint_credential with
 * the newest key: the key file is read (made if there is none) at each
 * call, as keys are made seldom and a replaced key file must not go on
 * being used.  The key file's lock is taken first, in share mode (see the
 * header), so that no rotation or retire changes the file until the row
 * commits or not.
 */
bytea *
msgq_access_key_seal(const char *access_key_id, const char *secret)
{
	const char *why;

	ak_lock_key_file(ShareLock);
	why = ak_load(true);
	if (why != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("cannot encrypt the access key's secret: %s", why),
				 errhint("Remove the file only if no access key is needed any more: a new key file is made then.")));
	return ak_seal(&ak_cache[0], access_key_id, secret);
}

/*
 * The secret of access_key_id from its sealed form, or, when it does not
 * open (a changed row, another key file, none), a message at elevel and
 * NULL.  The keys are this process's copy if the key file is still the one
 * it was read from; when they fail, the key file is read again all the
 * same, in case it was replaced in place.
 */
char *
msgq_access_key_open(const char *access_key_id, const bytea *sealed, int elevel)
{
	const char *why = NULL;
	bool		cached = ak_cache_current();
	char	   *secret = NULL;
	size_t		len;

	if (VARSIZE_ANY_EXHDR(sealed) <= AK_NONCE_LEN + AK_TAG_LEN)
		why = "the stored secret is too short";
	else if (!cached)
		why = ak_load(false);
	while (why == NULL)
	{
		int			i = ak_which_key(access_key_id, sealed, &len);

		if (i >= 0)
		{
			secret = ak_unseal(i, sealed, len);
			break;
		}
		why = ak_no_key;
		if (cached)
		{
			/* once more with the key file as it is now */
			cached = false;
			why = ak_load(false);
		}
	}
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

/* ------------------------------------------------------------------------
 * Rotating the key file
 * ------------------------------------------------------------------------
 */

/* Superusers only, outside recovery; what names the action in messages */
static void
ak_may_change_key_file(const MsgqCall *call, const char *what)
{
	if (!superuser_arg(call->caller))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s", what),
				 errdetail("Only superusers may change the key file of access keys' secrets.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot %s during recovery", what),
				 errhint("Do it on the primary server, then copy its key file \"%s\" here.",
						 MSGQ_ACCESS_KEY_FILE)));
}

/*
 * The locks of rotate and retire (see the header): the key file's,
 * exclusively, then msgq.endpoint_credential in SHARE ROW EXCLUSIVE mode.
 * Returns the table's oid.
 */
static Oid
ak_lock_for_change(void)
{
	ak_lock_key_file(ExclusiveLock);
	return RangeVarGetRelid(makeRangeVar("msgq", "endpoint_credential", -1),
							ShareRowExclusiveLock, false);
}

/*
 * The key file's keys into raw and this process's copy; an error if it
 * is unusable, but not if it does not exist when missing_ok (raw->n 0).
 */
static void
ak_read_for_change(AkRawKeys *raw, bool missing_ok, const char *what)
{
	AkFileId	id;
	bool		missing;
	const char *why = ak_read_key_file(raw, &id, &missing);

	if (why == NULL)
		ak_cache_set(raw, &id);
	else
	{
		ak_cache_clear();
		if (!(missing && missing_ok))
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("cannot %s: %s", what, why)));
	}
}

/*
 * Every row of msgq.endpoint_credential (in snapshot, or the current one
 * if InvalidSnapshot), as SPI's tuple table: access_key_id, encrypted_secret.
 */
static SPITupleTable *
ak_all_rows(Snapshot snapshot, uint64 *n)
{
	static SPIPlanPtr plan;
	const char *sql =
		"SELECT access_key_id, encrypted_secret FROM msgq.endpoint_credential"
		" ORDER BY access_key_id";
	int			rc;

	if (snapshot != InvalidSnapshot)
		rc = SPI_execute_snapshot(msgq_plan(&plan, sql, 0, NULL), NULL, NULL,
								  snapshot, InvalidSnapshot, true, false, 0);
	else
		rc = SPI_execute_plan(msgq_plan(&plan, sql, 0, NULL), NULL, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the access keys");
	*n = SPI_processed;
	return SPI_tuptable;
}

/* Row i of rows: its access key id and sealed secret */
static void
ak_row(SPITupleTable *rows, uint64 i, char **id, bytea **sealed)
{
	bool		isnull;

	*id = SPI_getvalue(rows->vals[i], rows->tupdesc, 1);
	*sealed = DatumGetByteaPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
}

/* A secret that opens with no key of the file: nothing can rotate it */
static void
ak_no_key_error(const char *id, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("the secret of access key %s cannot be decrypted with any key of the key file", id),
			 errdetail("Nothing was changed: the key file is as it was and every access key is as it was."),
			 errhint("Put back the key file it was encrypted with, or delete the access key (msgq.delete_access_key), then %s.",
					 what)));
}

/*
 * msgq.rotate_access_key_encryption(): a new key in front of the key
 * file's, then every secret re-encrypted with it in the caller's
 * transaction.  Returns the number of access keys re-encrypted.
 */
PG_FUNCTION_INFO_V1(msgq_rotate_access_key_encryption);
Datum
msgq_rotate_access_key_encryption(PG_FUNCTION_ARGS)
{
	static SPIPlanPtr update_plan;
	const char *what = "rotate the key file of access keys' secrets";
	MsgqCall	call;
	AkRawKeys	raw;
	SPITupleTable *rows;
	uint64		n;
	uint64		i;
	int32		done = 0;

	msgq_call_enter(&call);
	ak_may_change_key_file(&call, what);
	(void) ak_lock_for_change();
	ak_read_for_change(&raw, true, what);
	if (raw.n >= AK_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the key file \"%s\" already holds %d keys", MSGQ_ACCESS_KEY_FILE, raw.n),
				 errhint("Retire the older keys first: msgq.retire_access_key_encryption().")));

	/* every secret must open before the file changes */
	rows = ak_all_rows(InvalidSnapshot, &n);
	for (i = 0; i < n; i++)
	{
		char	   *id;
		bytea	   *sealed;
		size_t		len;

		ak_row(rows, i, &id, &sealed);
		if (ak_which_key(id, sealed, &len) < 0)
			ak_no_key_error(id, "rotate");
	}

	/* the new key first, durably, before any row is rewritten */
	memmove(raw.key[1], raw.key[0], raw.n * AK_KEY_LEN);
	if (!pg_strong_random(raw.key[0], AK_KEY_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random values")));
	raw.n++;
	ak_write_key_file(&raw, true);
	explicit_bzero(&raw, sizeof(raw));
	/* read back: what is re-encrypted with is what the file holds */
	ak_read_for_change(&raw, false, what);
	explicit_bzero(&raw, sizeof(raw));

	for (i = 0; i < n; i++)
	{
		char	   *id;
		bytea	   *sealed;
		size_t		len;
		int			k;
		char	   *secret;
		bytea	   *resealed;

		ak_row(rows, i, &id, &sealed);
		k = ak_which_key(id, sealed, &len);
		if (k < 0)
			elog(ERROR, "the key file read back does not open the secret of access key %s", id);
		secret = ak_unseal(k, sealed, len);
		resealed = ak_seal(&ak_cache[0], id, secret);
		explicit_bzero(secret, len);
		pfree(secret);
		if (SPI_execute_plan(msgq_plan(&update_plan,
									   "UPDATE msgq.endpoint_credential SET encrypted_secret = $2"
									   " WHERE access_key_id OPERATOR(pg_catalog.=) $1",
									   2, (Oid[]) {TEXTOID, BYTEAOID}),
							 (Datum[]) {CStringGetTextDatum(id), PointerGetDatum(resealed)},
							 NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not store the access key");
		done += SPI_processed;
	}
	msgq_call_leave(&call);
	PG_RETURN_INT32(done);
}

/*
 * msgq.retire_access_key_encryption(): every key of the key file but the
 * newest removed, once every committed secret of this database opens with
 * the newest.  Returns the number of keys removed.
 */
PG_FUNCTION_INFO_V1(msgq_retire_access_key_encryption);
Datum
msgq_retire_access_key_encryption(PG_FUNCTION_ARGS)
{
	const char *what = "retire the older keys of the key file of access keys' secrets";
	MsgqCall	call;
	AkRawKeys	raw;
	Oid			relid;
	Relation	rel;
	bool		written;
	SPITupleTable *rows;
	uint64		n;
	uint64		i;
	int			removed;

	msgq_call_enter(&call);
	ak_may_change_key_file(&call, what);
	relid = ak_lock_for_change();

	/*
	 * Rows this transaction wrote would not be what commits or rolls back:
	 * any write takes ROW EXCLUSIVE (TRUNCATE: ACCESS EXCLUSIVE), kept until
	 * the transaction ends (a rolled-back subtransaction's is released with
	 * its rows).
	 */
	rel = table_open(relid, NoLock);
	written = CheckRelationLockedByMe(rel, RowExclusiveLock, false) ||
		CheckRelationLockedByMe(rel, AccessExclusiveLock, false);
	table_close(rel, NoLock);
	if (written)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("cannot retire keys in a transaction that changed msgq.endpoint_credential"),
				 errdetail("Until this transaction ends, the secrets that will be committed are not known."),
				 errhint("Commit first (a rotation too), then retire in a transaction of its own.")));

	ak_read_for_change(&raw, true, what);
	if (raw.n <= 1)
	{
		explicit_bzero(&raw, sizeof(raw));
		msgq_call_leave(&call);
		PG_RETURN_INT32(0);
	}

	/*
	 * Every committed row, in a snapshot taken now: the locks make every
	 * writer of the table and every user of the file before us committed or
	 * rolled back, and make those after us wait.
	 */
	rows = ak_all_rows(GetLatestSnapshot(), &n);
	for (i = 0; i < n; i++)
	{
		char	   *id;
		bytea	   *sealed;
		size_t		len;
		int			k;

		ak_row(rows, i, &id, &sealed);
		k = ak_which_key(id, sealed, &len);
		if (k < 0)
			ak_no_key_error(id, "retire");
		if (k > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("access key %s is still encrypted with an older key", id),
					 errdetail("No key was removed: every secret must be encrypted with the newest key of the key file first."),
					 errhint("Run msgq.rotate_access_key_encryption() and commit, then retire.")));
	}

	removed = raw.n - 1;
	raw.n = 1;
	ak_write_key_file(&raw, true);
	explicit_bzero(&raw, sizeof(raw));
	ak_read_for_change(&raw, false, what);
	explicit_bzero(&raw, sizeof(raw));
	msgq_call_leave(&call);
	PG_RETURN_INT32(removed);
}

/*-------------------------------------------------------------------------
 *
 * handle.c
 *	  Receipt handles: opaque, authenticated names of one receive.
 *
 * A handle names a receive, not a message: every receive of a message
 * draws a fresh random 64-bit nonce, stores it in the message row, and
 * hands out
 *
 *		base64url( queue_id:4 | msg_seq:8 | nonce:8 | mac:16 )
 *
 * where mac is the first 16 bytes of HMAC-SHA256 over the database oid and
 * the 20 payload bytes, keyed with msgq.secret.receipt_key.  The key is
 * made at CREATE EXTENSION, kept in a WAL-logged table that only the
 * extension owner can read, and so survives restart and failover.  A
 * handle that does not decode, or whose mac does not match, or that names
 * another queue, is ReceiptHandleIsInvalid: it is never trusted.  A handle
 * that is authentic but stale (the message was received again since) still
 * decodes; the caller compares its nonce with the row's and so never lets
 * it touch a message another consumer now holds.
 *
 * Callers must be connected to SPI and running as the extension owner.
 *
 * IDENTIFICATION
 *	  src/handle.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hmac.h"
#include "common/sha2.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"

#include "msgq.h"

#define HANDLE_PAYLOAD_LEN	20
#define HANDLE_MAC_LEN		16
#define HANDLE_RAW_LEN		(HANDLE_PAYLOAD_LEN + HANDLE_MAC_LEN)
#define HANDLE_TEXT_LEN		48	/* base64url of 36 bytes, no padding */
#define HANDLE_KEY_MAX		64

static uint8 handle_key[HANDLE_KEY_MAX];
static int	handle_key_len = 0;		/* 0: not loaded */

static const char handle_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * Load the key once per backend.  The queue cache's relcache callback
 * forgets it (msgq_handle_cache_reset) when msgq.queue is invalidated,
 * which DROP EXTENSION does, so a re-created extension's new key is read.
 */
static void
handle_load_key(void)
{
	bool		isnull;
	bytea	   *key;
	int			ret;

	msgq_queue_cache_register();
	if (handle_key_len > 0)
		return;

	ret = SPI_execute("SELECT receipt_key FROM msgq.secret", true, 1);
	if (ret != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "msgq.secret has no key");
	key = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0],
										SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull || VARSIZE_ANY_EXHDR(key) < 16 ||
		VARSIZE_ANY_EXHDR(key) > HANDLE_KEY_MAX)
		elog(ERROR, "msgq.secret holds an invalid key");
	memcpy(handle_key, VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key));
	handle_key_len = VARSIZE_ANY_EXHDR(key);
}

void
msgq_handle_cache_reset(void)
{
	handle_key_len = 0;
}

/*
 * Load the key now, so that msgq_handle_decode() then runs without SPI
 * (batch functions decode handles under PG_TRY).
 */
void
msgq_handle_prepare(void)
{
	handle_load_key();
}

static void
handle_mac(const uint8 *payload, uint8 *mac)
{
	pg_hmac_ctx *ctx;
	uint8		full[PG_SHA256_DIGEST_LENGTH];
	uint32		db = pg_hton32((uint32) MyDatabaseId);

	handle_load_key();
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, handle_key, handle_key_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) &db, sizeof(db)) < 0 ||
		pg_hmac_update(ctx, payload, HANDLE_PAYLOAD_LEN) < 0 ||
		pg_hmac_final(ctx, full, sizeof(full)) < 0)
	{
		pg_hmac_free(ctx);
		elog(ERROR, "could not compute receipt handle authentication code");
	}
	pg_hmac_free(ctx);
	memcpy(mac, full, HANDLE_MAC_LEN);
}

int64
msgq_random_nonce(void)
{
	int64		nonce;

	msgq_random_bytes(&nonce, sizeof(nonce));
	return nonce;
}

char *
msgq_handle_encode(int32 queue_id, int64 msg_seq, int64 nonce)
{
	uint8		raw[HANDLE_RAW_LEN];
	uint32		q = pg_hton32((uint32) queue_id);
	uint64		s = pg_hton64((uint64) msg_seq);
	uint64		n = pg_hton64((uint64) nonce);
	char	   *out = palloc(HANDLE_TEXT_LEN + 1);
	int			i,
				o = 0;

	memcpy(raw, &q, 4);
	memcpy(raw + 4, &s, 8);
	memcpy(raw + 12, &n, 8);
	handle_mac(raw, raw + HANDLE_PAYLOAD_LEN);

	/* 36 bytes are 12 groups of 3, so no padding is ever needed */
	for (i = 0; i < HANDLE_RAW_LEN; i += 3)
	{
		uint32		v = (raw[i] << 16) | (raw[i + 1] << 8) | raw[i + 2];

		out[o++] = handle_alphabet[(v >> 18) & 63];
		out[o++] = handle_alphabet[(v >> 12) & 63];
		out[o++] = handle_alphabet[(v >> 6) & 63];
		out[o++] = handle_alphabet[v & 63];
	}
	out[o] = '\0';
	return out;
}

static int
handle_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

static void
handle_invalid(void)
{
	MSGQ_ERROR("ReceiptHandleIsInvalid", ERRCODE_MSGQ_RECEIPT_HANDLE_IS_INVALID,
			   "the input receipt handle is invalid");
}

/*
 * Decode and authenticate a token: false for anything msgq did not mint.
 */
static bool
handle_decode_raw(const char *handle, int32 *id, int64 *a, int64 *b)
{
	uint8		raw[HANDLE_RAW_LEN];
	uint8		mac[HANDLE_MAC_LEN];
	uint32		q;
	uint64		s,
				n;
	int			i,
				o = 0;
	uint8		diff = 0;

	if (handle == NULL || strlen(handle) != HANDLE_TEXT_LEN)
		return false;

	for (i = 0; i < HANDLE_TEXT_LEN; i += 4)
	{
		int			va = handle_b64_value(handle[i]),
					vb = handle_b64_value(handle[i + 1]),
					vc = handle_b64_value(handle[i + 2]),
					vd = handle_b64_value(handle[i + 3]);
		uint32		v;

		if (va < 0 || vb < 0 || vc < 0 || vd < 0)
			return false;
		v = (va << 18) | (vb << 12) | (vc << 6) | vd;
		raw[o++] = (v >> 16) & 0xff;
		raw[o++] = (v >> 8) & 0xff;
		raw[o++] = v & 0xff;
	}

	handle_mac(raw, mac);
	for (i = 0; i < HANDLE_MAC_LEN; i++)
		diff |= mac[i] ^ raw[HANDLE_PAYLOAD_LEN + i];
	if (diff != 0)
		return false;

	memcpy(&q, raw, 4);
	memcpy(&s, raw + 4, 8);
	memcpy(&n, raw + 12, 8);
	*id = (int32) pg_ntoh32(q);
	*a = (int64) pg_ntoh64(s);
	*b = (int64) pg_ntoh64(n);
	return true;
}

/*
 * Decode and authenticate a handle for queue_id.  Raises
 * ReceiptHandleIsInvalid for anything not minted by msgq for this queue.
 */
void
msgq_handle_decode(const char *handle, int32 queue_id,
				   int64 *msg_seq, int64 *nonce)
{
	int32		id;

	if (!handle_decode_raw(handle, &id, msg_seq, nonce) || id != queue_id)
		handle_invalid();
}

/*
 * The same authenticated encoding for other tokens (stream iterators use
 * negative ids, so that no receipt handle is ever a valid iterator).
 */
char *
msgq_token_encode(int32 id, int64 a, int64 b)
{
	return msgq_handle_encode(id, a, b);
}

bool
msgq_token_decode(const char *token, int32 *id, int64 *a, int64 *b)
{
	return handle_decode_raw(token, id, a, b);
}

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

/*
 * HMAC-SHA256 with one fixed key: the SHA-256 states after the key's inner
 * and outer pad blocks are computed once, when the key is loaded, so a mac
 * costs two compressions (its message and the inner digest each fit in one
 * block).  A general-purpose HMAC context would redo the key blocks, and
 * allocate and look up its digest, on every handle.
 */
static uint32 handle_inner[8];
static uint32 handle_outer[8];

static const uint32 sha256_k[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
	0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
	0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
	0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
	0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
	0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};

static const uint32 sha256_init[8] = {
	0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
};

#define ROTR32(x, n)	(((x) >> (n)) | ((x) << (32 - (n))))

/* The SHA-256 compression function (FIPS 180-4, 6.2.2) on one block. */
static void
sha256_block(uint32 *state, const uint8 *block)
{
	uint32		w[64];
	uint32		a, b, c, d, e, f, g, h;
	int			t;

	for (t = 0; t < 16; t++)
		w[t] = ((uint32) block[4 * t] << 24) | ((uint32) block[4 * t + 1] << 16) |
			((uint32) block[4 * t + 2] << 8) | (uint32) block[4 * t + 3];
	for (t = 16; t < 64; t++)
	{
		uint32		s0 = ROTR32(w[t - 15], 7) ^ ROTR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32		s1 = ROTR32(w[t - 2], 17) ^ ROTR32(w[t - 2], 19) ^ (w[t - 2] >> 10);

		w[t] = w[t - 16] + s0 + w[t - 7] + s1;
	}
	a = state[0];
	b = state[1];
	c = state[2];
	d = state[3];
	e = state[4];
	f = state[5];
	g = state[6];
	h = state[7];
	for (t = 0; t < 64; t++)
	{
		uint32		t1 = h + (ROTR32(e, 6) ^ ROTR32(e, 11) ^ ROTR32(e, 25)) +
			((e & f) ^ (~e & g)) + sha256_k[t] + w[t];
		uint32		t2 = (ROTR32(a, 2) ^ ROTR32(a, 13) ^ ROTR32(a, 22)) +
			((a & b) ^ (a & c) ^ (b & c));

		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
	state[5] += f;
	state[6] += g;
	state[7] += h;
}

/*
 * Finish a hash whose state has absorbed one 64-byte block, with the last
 * len (< 56) bytes of data: digest is the 32-byte result.
 */
static void
sha256_final_after_block(const uint32 *state, const uint8 *data, int len,
						 uint8 *digest)
{
	uint32		st[8];
	uint8		block[64];
	uint64		bits = (uint64) (64 + len) * 8;
	int			i;

	Assert(len < 56);
	memcpy(st, state, sizeof(st));
	memset(block, 0, sizeof(block));
	memcpy(block, data, len);
	block[len] = 0x80;
	for (i = 0; i < 8; i++)
		block[63 - i] = (uint8) (bits >> (8 * i));
	sha256_block(st, block);
	for (i = 0; i < 8; i++)
	{
		digest[4 * i] = (uint8) (st[i] >> 24);
		digest[4 * i + 1] = (uint8) (st[i] >> 16);
		digest[4 * i + 2] = (uint8) (st[i] >> 8);
		digest[4 * i + 3] = (uint8) st[i];
	}
}

/* The states after HMAC's inner and outer key blocks (RFC 2104). */
static void
handle_key_states(void)
{
	uint8		pad[64];
	int			i;

	for (i = 0; i < 64; i++)
		pad[i] = (i < handle_key_len ? handle_key[i] : 0) ^ 0x36;
	memcpy(handle_inner, sha256_init, sizeof(handle_inner));
	sha256_block(handle_inner, pad);
	for (i = 0; i < 64; i++)
		pad[i] = (i < handle_key_len ? handle_key[i] : 0) ^ 0x5c;
	memcpy(handle_outer, sha256_init, sizeof(handle_outer));
	sha256_block(handle_outer, pad);
}

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
	handle_key_states();
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

/* mac = the first HANDLE_MAC_LEN bytes of HMAC-SHA256(key, db oid | payload) */
static void
handle_mac(const uint8 *payload, uint8 *mac)
{
	uint8		msg[4 + HANDLE_PAYLOAD_LEN];
	uint8		inner[32];
	uint8		full[32];
	uint32		db = pg_hton32((uint32) MyDatabaseId);

	handle_load_key();
	memcpy(msg, &db, sizeof(db));
	memcpy(msg + sizeof(db), payload, HANDLE_PAYLOAD_LEN);
	sha256_final_after_block(handle_inner, msg, sizeof(msg), inner);
	sha256_final_after_block(handle_outer, inner, sizeof(inner), full);
	memcpy(mac, full, HANDLE_MAC_LEN);
}

/*
 * Sign data with the database's key, for a purpose named by label (topic
 * notifications' Signature): HMAC-SHA256(key, label | 0 | data).  The
 * label keeps signatures of one kind from standing for another.
 */
void
msgq_sign(const char *label, const char *data, size_t len, uint8 *out)
{
	pg_hmac_ctx *ctx;

	handle_load_key();
	ctx = pg_hmac_create(PG_SHA256);
	if (ctx == NULL ||
		pg_hmac_init(ctx, handle_key, handle_key_len) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) label, strlen(label) + 1) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) data, len) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute a signature");
	pg_hmac_free(ctx);
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

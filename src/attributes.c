/*-------------------------------------------------------------------------
 *
 * attributes.c
 *	  Message bodies and message attributes: AWS's validation rules, sizes
 *	  and the MD5 digests that SDKs verify.
 *
 * MD5OfMessageAttributes is computed exactly as SQS does: attributes are
 * sorted by name; each contributes a 4-byte big-endian length and the
 * UTF-8 name, a 4-byte length and the data type, one transport byte (1 for
 * String and Number, 2 for Binary), and a 4-byte length and the value
 * bytes (the decoded bytes for Binary); the digest is the MD5 of the whole
 * concatenation, in lowercase hex.
 *
 * IDENTIFICATION
 *	  src/attributes.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/base64.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonfuncs.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "msgq.h"

typedef struct AttrEntry
{
	char	   *name;
	char	   *type;
	bool		binary;
	char	   *value;			/* decoded bytes for Binary */
	int			value_len;
} AttrEntry;

static int
attr_cmp(const void *a, const void *b)
{
	return strcmp(((const AttrEntry *) a)->name, ((const AttrEntry *) b)->name);
}

/*
 * MD5 (RFC 1321), computed here rather than through pg_md5_hash(): with
 * OpenSSL 3 every pg_md5_hash() call creates and fetches a digest context,
 * which costs more than the rest of a send.  Bodies are hashed once per
 * send, so this is on the hot path.
 */
static uint32 md5_k[64];
static bool md5_ready = false;

static void
md5_init_table(void)
{
	int			i;

	/* K[i] = floor(2^32 * |sin(i + 1)|), as the RFC defines it */
	for (i = 0; i < 64; i++)
		md5_k[i] = (uint32) (fabs(sin((double) (i + 1))) * 4294967296.0);
	md5_ready = true;
}

/* The four auxiliary functions of RFC 1321 section 3.4, in forms with fewer operations */
#define MD5_F(x, y, z)	((z) ^ ((x) & ((y) ^ (z))))
#define MD5_G(x, y, z)	((y) ^ ((z) & ((x) ^ (y))))
#define MD5_H(x, y, z)	((x) ^ (y) ^ (z))
#define MD5_I(x, y, z)	((y) ^ ((x) | ~(z)))
#define MD5_STEP(f, a, b, c, d, k, s) \
	do { \
		(a) += f((b), (c), (d)) + m[(k) & 15] + md5_k[i_]; \
		(a) = ((a) << (s)) | ((a) >> (32 - (s))); \
		(a) += (b); \
		i_++; \
	} while (0)

/*
 * One 64-byte block.  The 64 steps are written out (four per line, in the
 * RFC's order) so that the word indexes and shifts are constants.
 */
static void
md5_block(uint32 *state, const uint8 *block)
{
	uint32		m[16];
	uint32		a = state[0],
				b = state[1],
				c = state[2],
				d = state[3];
	int			i_ = 0;

#ifdef WORDS_BIGENDIAN
	{
		int			i;

		for (i = 0; i < 16; i++)
			m[i] = (uint32) block[i * 4] | ((uint32) block[i * 4 + 1] << 8) |
				((uint32) block[i * 4 + 2] << 16) | ((uint32) block[i * 4 + 3] << 24);
	}
#else
	memcpy(m, block, 64);
#endif

	/* round 1: word i */
	MD5_STEP(MD5_F, a, b, c, d, 0, 7); MD5_STEP(MD5_F, d, a, b, c, 1, 12);
	MD5_STEP(MD5_F, c, d, a, b, 2, 17); MD5_STEP(MD5_F, b, c, d, a, 3, 22);
	MD5_STEP(MD5_F, a, b, c, d, 4, 7); MD5_STEP(MD5_F, d, a, b, c, 5, 12);
	MD5_STEP(MD5_F, c, d, a, b, 6, 17); MD5_STEP(MD5_F, b, c, d, a, 7, 22);
	MD5_STEP(MD5_F, a, b, c, d, 8, 7); MD5_STEP(MD5_F, d, a, b, c, 9, 12);
	MD5_STEP(MD5_F, c, d, a, b, 10, 17); MD5_STEP(MD5_F, b, c, d, a, 11, 22);
	MD5_STEP(MD5_F, a, b, c, d, 12, 7); MD5_STEP(MD5_F, d, a, b, c, 13, 12);
	MD5_STEP(MD5_F, c, d, a, b, 14, 17); MD5_STEP(MD5_F, b, c, d, a, 15, 22);
	/* round 2: word 5i + 1 */
	MD5_STEP(MD5_G, a, b, c, d, 1, 5); MD5_STEP(MD5_G, d, a, b, c, 6, 9);
	MD5_STEP(MD5_G, c, d, a, b, 11, 14); MD5_STEP(MD5_G, b, c, d, a, 0, 20);
	MD5_STEP(MD5_G, a, b, c, d, 5, 5); MD5_STEP(MD5_G, d, a, b, c, 10, 9);
	MD5_STEP(MD5_G, c, d, a, b, 15, 14); MD5_STEP(MD5_G, b, c, d, a, 4, 20);
	MD5_STEP(MD5_G, a, b, c, d, 9, 5); MD5_STEP(MD5_G, d, a, b, c, 14, 9);
	MD5_STEP(MD5_G, c, d, a, b, 3, 14); MD5_STEP(MD5_G, b, c, d, a, 8, 20);
	MD5_STEP(MD5_G, a, b, c, d, 13, 5); MD5_STEP(MD5_G, d, a, b, c, 2, 9);
	MD5_STEP(MD5_G, c, d, a, b, 7, 14); MD5_STEP(MD5_G, b, c, d, a, 12, 20);
	/* round 3: word 3i + 5 */
	MD5_STEP(MD5_H, a, b, c, d, 5, 4); MD5_STEP(MD5_H, d, a, b, c, 8, 11);
	MD5_STEP(MD5_H, c, d, a, b, 11, 16); MD5_STEP(MD5_H, b, c, d, a, 14, 23);
	MD5_STEP(MD5_H, a, b, c, d, 1, 4); MD5_STEP(MD5_H, d, a, b, c, 4, 11);
	MD5_STEP(MD5_H, c, d, a, b, 7, 16); MD5_STEP(MD5_H, b, c, d, a, 10, 23);
	MD5_STEP(MD5_H, a, b, c, d, 13, 4); MD5_STEP(MD5_H, d, a, b, c, 0, 11);
	MD5_STEP(MD5_H, c, d, a, b, 3, 16); MD5_STEP(MD5_H, b, c, d, a, 6, 23);
	MD5_STEP(MD5_H, a, b, c, d, 9, 4); MD5_STEP(MD5_H, d, a, b, c, 12, 11);
	MD5_STEP(MD5_H, c, d, a, b, 15, 16); MD5_STEP(MD5_H, b, c, d, a, 2, 23);
	/* round 4: word 7i */
	MD5_STEP(MD5_I, a, b, c, d, 0, 6); MD5_STEP(MD5_I, d, a, b, c, 7, 10);
	MD5_STEP(MD5_I, c, d, a, b, 14, 15); MD5_STEP(MD5_I, b, c, d, a, 5, 21);
	MD5_STEP(MD5_I, a, b, c, d, 12, 6); MD5_STEP(MD5_I, d, a, b, c, 3, 10);
	MD5_STEP(MD5_I, c, d, a, b, 10, 15); MD5_STEP(MD5_I, b, c, d, a, 1, 21);
	MD5_STEP(MD5_I, a, b, c, d, 8, 6); MD5_STEP(MD5_I, d, a, b, c, 15, 10);
	MD5_STEP(MD5_I, c, d, a, b, 6, 15); MD5_STEP(MD5_I, b, c, d, a, 13, 21);
	MD5_STEP(MD5_I, a, b, c, d, 4, 6); MD5_STEP(MD5_I, d, a, b, c, 11, 10);
	MD5_STEP(MD5_I, c, d, a, b, 2, 15); MD5_STEP(MD5_I, b, c, d, a, 9, 21);

	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
}

/* The 16 bytes of the MD5 digest of data */
void
msgq_md5(const char *data, size_t len, uint8 *digest)
{
	uint32		state[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
	uint8		tail[128];
	size_t		full = len & ~(size_t) 63;
	size_t		rest = len - full;
	size_t		tail_len;
	uint64		bits = (uint64) len * 8;
	size_t		i;

	if (!md5_ready)
		md5_init_table();

	for (i = 0; i < full; i += 64)
		md5_block(state, (const uint8 *) data + i);

	memcpy(tail, data + full, rest);
	tail[rest] = 0x80;
	tail_len = (rest < 56) ? 64 : 128;
	memset(tail + rest + 1, 0, tail_len - rest - 1);
	for (i = 0; i < 8; i++)
		tail[tail_len - 8 + i] = (uint8) (bits >> (8 * i));
	md5_block(state, tail);
	if (tail_len == 128)
		md5_block(state, tail + 64);

	for (i = 0; i < 16; i++)
		digest[i] = (uint8) (state[i / 4] >> (8 * (i % 4)));
}

char *
msgq_md5_hex(const char *data, size_t len)
{
	static const char hexdigits[] = "0123456789abcdef";
	uint8		digest[16];
	char	   *hex = palloc(33);
	int			i;

	msgq_md5(data, len, digest);
	for (i = 0; i < 16; i++)
	{
		uint8		byte = digest[i];

		hex[i * 2] = hexdigits[byte >> 4];
		hex[i * 2 + 1] = hexdigits[byte & 15];
	}
	hex[32] = '\0';
	return hex;
}

/*
 * Check a message body against AWS's allowed characters:
 * #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF.
 */
void
msgq_check_body(const char *body, int len)
{
	const unsigned char *p = (const unsigned char *) body;
	const unsigned char *end = p + len;

	while (p < end)
	{
		pg_wchar	c;
		int			l;

		if (*p < 0x80)
		{
			c = *p;
			l = 1;
		}
		else
		{
			l = pg_utf_mblen(p);
			c = utf8_to_unicode(p);
		}
		if (!(c == 0x9 || c == 0xA || c == 0xD ||
			  (c >= 0x20 && c <= 0xD7FF) ||
			  (c >= 0xE000 && c <= 0xFFFD) ||
			  (c >= 0x10000 && c <= 0x10FFFF)))
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_MESSAGE_CONTENTS),
					 errmsg("invalid characters found in the message body"),
					 errdetail_internal("AWS error code: InvalidMessageContents"),
					 errhint("Message bodies may contain tab, newline, carriage return and Unicode characters from U+0020 to U+D7FF, U+E000 to U+FFFD and U+10000 to U+10FFFF.")));
		p += l;
	}
}

static void
attr_invalid(const char *fmt_name, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
			 errmsg("message attribute \"%s\" is invalid: %s", fmt_name, what),
			 errdetail_internal("AWS error code: InvalidParameterValue")));
}

static void
attr_check_name(const char *name)
{
	size_t		len = strlen(name);
	size_t		i;

	if (len == 0 || len > 256)
		attr_invalid(name, "names have 1 to 256 characters");
	for (i = 0; i < len; i++)
	{
		char		c = name[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			attr_invalid(name, "names may contain only letters, digits, \"_\", \"-\" and \".\"");
	}
	if (name[0] == '.' || name[len - 1] == '.' || strstr(name, "..") != NULL)
		attr_invalid(name, "names must not start or end with \".\" nor contain \"..\"");
	if (pg_strncasecmp(name, "AWS.", 4) == 0 || pg_strncasecmp(name, "Amazon.", 7) == 0)
		attr_invalid(name, "names must not start with \"AWS.\" or \"Amazon.\"");
}

static char *
attr_get_string(JsonbContainer *obj, const char *key, bool *present)
{
	JsonbValue	k;
	JsonbValue *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
	*present = (v != NULL);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * A Number attribute: a decimal number, optionally signed and with an
 * exponent, of at most 38 significant digits (leading and trailing zeros
 * do not count), between 10^-128 and 10^+126 in magnitude (or zero).
 */
static void
attr_check_number(const char *name, const char *value)
{
	const char *p = value;
	int			ndigits = 0;	/* digits of the mantissa */
	int			int_digits = 0; /* of which before the point */
	int			first_nz = -1;	/* index of the first non-zero digit */
	int			last_nz = -1;
	bool		seen_point = false;
	long		exponent = 0;
	long		order;

	if (*p == '-' || *p == '+')
		p++;
	for (; *p && *p != 'e' && *p != 'E'; p++)
	{
		if (*p >= '0' && *p <= '9')
		{
			if (*p != '0')
			{
				if (first_nz < 0)
					first_nz = ndigits;
				last_nz = ndigits;
			}
			ndigits++;
			if (!seen_point)
				int_digits++;
		}
		else if (*p == '.' && !seen_point)
			seen_point = true;
		else
			attr_invalid(name, "the value is not a valid number");
	}
	if (ndigits == 0)
		attr_invalid(name, "the value is not a valid number");
	if (*p == 'e' || *p == 'E')
	{
		char	   *end;

		p++;
		if (!((*p >= '0' && *p <= '9') ||
			  ((*p == '-' || *p == '+') && p[1] >= '0' && p[1] <= '9')))
			attr_invalid(name, "the value is not a valid number");
		errno = 0;
		exponent = strtol(p, &end, 10);
		if (*end != '\0' || errno != 0)
			attr_invalid(name, "the value is not a valid number");
	}
	if (first_nz < 0)
		return;					/* zero */
	if (last_nz - first_nz + 1 > 38)
		attr_invalid(name, "numbers have at most 38 significant digits");
	/* decimal order of magnitude of the first significant digit */
	order = (long) (int_digits - first_nz - 1) + exponent;
	if (order < -128 || order > 126)
		attr_invalid(name, "numbers must be between 10^-128 and 10^+126 in magnitude");
}

/*
 * Validate message attributes in AWS's shape
 * {"name": {"DataType": "String", "StringValue": "..."}, ...}, return the
 * number of bytes they count toward the message size, and set *md5 to
 * MD5OfMessageAttributes (NULL when there are none).
 */
int
msgq_check_message_attributes(Jsonb *attrs, char **md5)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	AttrEntry  *entries;
	int			n = 0;
	int			size = 0;
	int			i;
	StringInfoData buf;

	*md5 = NULL;
	if (attrs == NULL)
		return 0;
	if (!JB_ROOT_IS_OBJECT(attrs) || JB_ROOT_IS_SCALAR(attrs))
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "message attributes must be a JSON object");
	if (JB_ROOT_COUNT(attrs) == 0)
		return 0;
	if (JB_ROOT_COUNT(attrs) > MSGQ_MAX_MESSAGE_ATTRIBUTES)
		ereport(ERROR,
				(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
				 errmsg("number of message attributes [%d] exceeds the allowed maximum [%d]",
						JB_ROOT_COUNT(attrs), MSGQ_MAX_MESSAGE_ATTRIBUTES),
				 errdetail_internal("AWS error code: InvalidParameterValue")));

	entries = palloc0(sizeof(AttrEntry) * JB_ROOT_COUNT(attrs));
	it = JsonbIteratorInit(&attrs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		AttrEntry  *e;
		bool		present;
		char	   *dot;
		char	   *base;

		if (tok != WJB_KEY)
			continue;
		e = &entries[n++];
		e->name = pnstrdup(v.val.string.val, v.val.string.len);
		attr_check_name(e->name);

		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || v.type != jbvBinary ||
			!JsonContainerIsObject(v.val.binary.data))
			attr_invalid(e->name, "the value must be an object with DataType and StringValue or BinaryValue");

		e->type = attr_get_string(v.val.binary.data, "DataType", &present);
		if (e->type == NULL || e->type[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("message attribute \"%s\" must have a DataType", e->name),
					 errdetail_internal("AWS error code: InvalidParameterValue")));
		if (strlen(e->type) > 256)
			attr_invalid(e->name, "data types have at most 256 characters");
		base = pstrdup(e->type);
		dot = strchr(base, '.');
		if (dot)
		{
			*dot = '\0';
			if (dot[1] == '\0')
				attr_invalid(e->name, "a custom data type label must not be empty");
		}

		if (strcmp(base, "String") == 0 || strcmp(base, "Number") == 0)
		{
			e->value = attr_get_string(v.val.binary.data, "StringValue", &present);
			if (e->value == NULL || e->value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
						 errmsg("message attribute \"%s\" must contain a non-empty value of type \"%s\"",
								e->name, base),
						 errdetail_internal("AWS error code: InvalidParameterValue")));
			e->value_len = strlen(e->value);
			if (strcmp(base, "String") == 0)
				msgq_check_body(e->value, e->value_len);
			else
			{
				attr_check_number(e->name, e->value);
			}
		}
		else if (strcmp(base, "Binary") == 0)
		{
			char	   *b64 = attr_get_string(v.val.binary.data, "BinaryValue", &present);
			int			len,
						dlen;

			if (b64 == NULL || b64[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
						 errmsg("message attribute \"%s\" must contain a non-empty value of type \"Binary\"",
								e->name),
						 errdetail_internal("AWS error code: InvalidParameterValue")));
			len = strlen(b64);
			e->value = palloc(pg_b64_dec_len(len) + 1);
			dlen = pg_b64_decode(b64, len, e->value, pg_b64_dec_len(len));
			if (dlen <= 0)
				attr_invalid(e->name, "BinaryValue must be non-empty base64");
			e->value_len = dlen;
			e->binary = true;
		}
		else
			ereport(ERROR,
					(errcode(ERRCODE_MSGQ_INVALID_PARAMETER_VALUE),
					 errmsg("message attribute \"%s\" has an invalid data type \"%s\"",
							e->name, e->type),
					 errdetail_internal("AWS error code: InvalidParameterValue"),
					 errhint("Data types are String, Number or Binary, optionally followed by \".label\".")));

		size += strlen(e->name) + strlen(e->type) + e->value_len;
	}

	qsort(entries, n, sizeof(AttrEntry), attr_cmp);
	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		uint32		l;
		char		transport = entries[i].binary ? 2 : 1;

		l = pg_hton32(strlen(entries[i].name));
		appendBinaryStringInfo(&buf, (char *) &l, 4);
		appendStringInfoString(&buf, entries[i].name);
		l = pg_hton32(strlen(entries[i].type));
		appendBinaryStringInfo(&buf, (char *) &l, 4);
		appendStringInfoString(&buf, entries[i].type);
		appendBinaryStringInfo(&buf, &transport, 1);
		l = pg_hton32(entries[i].value_len);
		appendBinaryStringInfo(&buf, (char *) &l, 4);
		appendBinaryStringInfo(&buf, entries[i].value, entries[i].value_len);
	}
	*md5 = msgq_md5_hex(buf.data, buf.len);
	return size;
}

/*
 * Does an attribute name match a selection of MessageAttributeNames
 * ("All", ".*", "prefix.*" or an exact name)?
 */
bool
msgq_name_selected(const char *name, Datum *sel, int nsel)
{
	int			i;

	for (i = 0; i < nsel; i++)
	{
		char	   *s = TextDatumGetCString(sel[i]);
		size_t		l = strlen(s);

		if (strcmp(s, "All") == 0 || strcmp(s, ".*") == 0)
			return true;
		if (l > 2 && strcmp(s + l - 2, ".*") == 0)
		{
			if (strncmp(name, s, l - 1) == 0)
				return true;
		}
		else if (strcmp(s, name) == 0)
			return true;
	}
	return false;
}


/* ------------------------------------------------------------------------
 * Duplicate keys
 *
 * jsonb keeps the last of two equal keys, so two message attributes with
 * the same name would silently become one.  send_message and
 * send_message_batch therefore take json text and look for duplicate keys
 * in it before converting it to jsonb.
 * ------------------------------------------------------------------------
 */

typedef struct DupFrame
{
	char	   *parent_key;		/* key this object is the value of */
	List	   *keys;
} DupFrame;

typedef struct DupState
{
	List	   *frames;			/* open objects, innermost first */
	int			depth;			/* open objects and arrays */
	bool		top_array;		/* a batch: an array of entries */
	int			entry;			/* current entry of a batch */
	char	   *last_key;
	char	  **dups;			/* per entry (or [0]): the first problem */
	int			ndups;
	/* the jsonb being built in the same pass (msgq_json_to_jsonb_dups) */
	bool		build;
	JsonbParseState *pstate;
	JsonbValue *result;
} DupState;

/* Add a scalar (or a container's start or end) to the jsonb being built */
static void
dup_push(DupState *st, JsonbIteratorToken tok, JsonbValue *v)
{
	JsonbValue *r;

	if (!st->build)
		return;
	if (tok == WJB_VALUE && st->pstate != NULL && st->pstate->contVal.type == jbvArray)
		tok = WJB_ELEM;
	r = pushJsonbValue(&st->pstate, tok, v);
	if (st->pstate == NULL)
		st->result = r;
}

static MSGQ_JSON_CB_TYPE
dup_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	DupState   *st = arg;
	JsonbValue	v;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.val = token;
			v.val.string.len = strlen(token);
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = tokentype == JSON_TOKEN_TRUE;
			break;
		default:
			v.type = jbvNull;
			break;
	}
	if (st->pstate == NULL)
		st->build = false;		/* a bare scalar: left to jsonb_in */
	dup_push(st, WJB_VALUE, &v);
	MSGQ_JSON_CB_DONE;
}

static Jsonb *json_duplicates(text *json, char **dups, int ndups, bool build);

static MSGQ_JSON_CB_TYPE
dup_object_start(void *arg)
{
	DupState   *st = arg;
	DupFrame   *f = palloc0(sizeof(DupFrame));

	f->parent_key = st->depth > 0 ? st->last_key : NULL;
	st->frames = lcons(f, st->frames);
	st->depth++;
	dup_push(st, WJB_BEGIN_OBJECT, NULL);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
dup_object_end(void *arg)
{
	DupState   *st = arg;

	st->frames = list_delete_first(st->frames);
	st->depth--;
	dup_push(st, WJB_END_OBJECT, NULL);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
dup_array_start(void *arg)
{
	DupState   *st = arg;

	if (st->depth == 0)
		st->top_array = true;
	st->depth++;
	dup_push(st, WJB_BEGIN_ARRAY, NULL);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
dup_array_end(void *arg)
{
	((DupState *) arg)->depth--;
	dup_push((DupState *) arg, WJB_END_ARRAY, NULL);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
dup_array_element_start(void *arg, bool isnull)
{
	DupState   *st = arg;

	if (st->top_array && st->depth == 1)
		st->entry++;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
dup_field_start(void *arg, char *fname, bool isnull)
{
	DupState   *st = arg;
	DupFrame   *f = linitial(st->frames);
	ListCell   *lc;
	int			slot = st->top_array ? st->entry : 0;

	st->last_key = fname;
	if (st->build)
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = fname;
		k.val.string.len = strlen(fname);
		dup_push(st, WJB_KEY, &k);
	}
	foreach(lc, f->keys)
	{
		if (strcmp((char *) lfirst(lc), fname) != 0)
			continue;
		if (slot >= 0 && slot < st->ndups && st->dups[slot] == NULL)
		{
			bool		attr_names;

			/* the attributes object: send_message's argument, or an entry's */
			attr_names = st->top_array ?
				(st->depth == 3 && f->parent_key != NULL &&
				 strcmp(f->parent_key, "MessageAttributes") == 0) :
				st->depth == 1;
			st->dups[slot] = attr_names ?
				psprintf("message attribute name \"%s\" is used more than once", fname) :
				psprintf("key \"%s\" appears more than once in the same object", fname);
		}
		MSGQ_JSON_CB_DONE;
	}
	f->keys = lappend(f->keys, fname);
	MSGQ_JSON_CB_DONE;
}

/*
 * Look for duplicate object keys in json text.  For send_message (an
 * attributes object), dups[0] gets the first problem; for a batch (an
 * array of entries), dups[i] gets entry i's, for i < ndups.  NULL where
 * there is none.  The text is valid json (the json type's input checked it).
 */
void
msgq_json_duplicates(text *json, char **dups, int ndups)
{
	(void) json_duplicates(json, dups, ndups, false);
}

/*
 * The same pass, building the jsonb of the text at the same time (what
 * jsonb_in would make of it: duplicate keys keep their last value), so
 * that the text is lexed once instead of twice.
 */
Jsonb *
msgq_json_to_jsonb_dups(text *json, char **dups, int ndups)
{
	Jsonb	   *j = json_duplicates(json, dups, ndups, true);

	if (j == NULL)
		j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
											   CStringGetDatum(text_to_cstring(json))));
	return j;
}

static Jsonb *
json_duplicates(text *json, char **dups, int ndups, bool build)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	DupState	st;

	memset(&st, 0, sizeof(st));
	st.entry = -1;
	st.dups = dups;
	st.ndups = ndups;
	st.build = build;
	memset(dups, 0, sizeof(char *) * ndups);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = dup_object_start;
	sem.object_end = dup_object_end;
	sem.array_start = dup_array_start;
	sem.array_end = dup_array_end;
	sem.array_element_start = dup_array_element_start;
	sem.object_field_start = dup_field_start;
	if (build)
		sem.scalar = dup_scalar;

	lex = msgq_json_lex(VARDATA_ANY(json), VARSIZE_ANY_EXHDR(json));
	pg_parse_json_or_ereport(lex, &sem);
	return st.build && st.result != NULL ? JsonbValueToJsonb(st.result) : NULL;
}

/*
 * json text to jsonb, after refusing duplicate keys (InvalidParameterValue).
 * For send_message's message_attributes.
 */
Jsonb *
msgq_json_to_jsonb_unique(text *json)
{
	char	   *dup;

	Jsonb	   *j = msgq_json_to_jsonb_dups(json, &dup, 1);

	if (dup != NULL)
		MSGQ_ERROR("InvalidParameterValue", ERRCODE_MSGQ_INVALID_PARAMETER_VALUE,
				   "%s", dup);
	return j;
}

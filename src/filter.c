/*-------------------------------------------------------------------------
 *
 * filter.c
 *	  SNS subscription filter policies: validation with AWS's error texts,
 *	  a compiled form, one-policy matching and an index over many policies.
 *
 * Compiling.  The policy text is parsed with PostgreSQL's JSON parser into
 * a small tree of our own (jsonb would lose duplicate keys and the text of
 * numbers).  A prescan bounds the nesting depth first, so neither the
 * parser nor the recursive walks below can run out of stack.  The walk
 * validates every condition in document order and builds an AND/OR term:
 * nested keys (MessageBody scope) are joined with "." into one path and
 * ANDed with their siblings; each "$or" adds alternatives.  The key limit
 * and the complexity limit are checked on that term (the complexity as
 * sum-over-$or-branches of product-over-keys of values x depth, computed by
 * distributing, never by multiplying out), and only then is the term
 * multiplied out into at most 150 conjunctions of keys.  Each key holds its
 * path and its ORed conditions.  All the work happens in a scratch context;
 * the result is copied into the caller's context at the end, so a failed
 * compile leaves nothing behind there.
 *
 * Messages.  msgq_filter_message() turns the attributes into a hash table
 * from name to typed values (String.Array parsed into its elements, Binary
 * left out).  The body is parsed at most once, on first use by a
 * MessageBody policy, by a streaming pass that files every leaf value under
 * its path: the object keys from the root joined with ".", arrays being
 * transparent.  A policy path P matches a body value exactly when P equals
 * that joined path, which covers nested keys, literally dotted keys and every
 * mix of the two ({"a.b.c"} finds {"a":{"b.c":..}} and {"a.b":{"c":..}}),
 * so matching a key is one hash probe.
 *
 * Numbers are int64 counts of 10^-5, rounded half away from zero from the
 * exact decimal text (no floating point), so 301.5 = 3.015e2 and
 * 100.123456789 = 100.1234567.  Policy numbers must lie within +-10^9;
 * message numbers beyond that become a value just past the end of the range
 * on their side, which compares correctly with every policy bound and equals
 * none.
 *
 * Sets.  msgq_filter_set_build() files every conjunction of every policy
 * under one key, its anchor, chosen by how selective its conditions are:
 * exact values (a hash table of (path, type, value)), then prefixes,
 * suffixes, equals-ignore-case and CIDR blocks (hash tables probed once per
 * distinct prefix length, suffix length or mask length of the path), then
 * numeric ranges (a centred interval tree per path), then anything-but and
 * exists:true (a list per path, taken whenever the path has a value).  A
 * conjunction whose every key can match an absent path (exists:false) is
 * checked for every message.  A message probes the structures of the paths
 * it has values for, and every conjunction found is verified in full with
 * the one-policy matcher, so the set answers exactly as the policies one by
 * one would.  The set points to its filters' conjunctions: the filters must
 * outlive the set.  The set keeps scratch space for the candidates of one
 * match, so a set is used by one backend.
 *
 * Memory.  Matching allocates only in the message's context (lower-cased
 * strings, the body's path table), the context it was prepared in; nothing
 * in the filter's context, and in the set's only the growth of its one
 * reused key buffer.
 *
 * doc/filter.md describes the choices where AWS's behaviour is not
 * recorded.
 *
 * IDENTIFICATION
 *	  src/filter.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/formatting.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "msgq.h"
#include "compat.h"
#include "filter.h"

PG_FUNCTION_INFO_V1(msgq_filter_policy_matches);
PG_FUNCTION_INFO_V1(msgq_filter_set_check);
PG_FUNCTION_INFO_V1(msgq_filter_set_bench);

/* AWS's limits */
#define FILTER_MAX_POLICY_BYTES		262144	/* 256 KB */
#define FILTER_MAX_KEYS				5
#define FILTER_MAX_COMPLEXITY		150
/* Jackson's default StreamReadConstraints nesting limit */
#define FILTER_MAX_DEPTH			1000

/* numbers: units of 10^-5; policy values within +-10^9 */
#define FILTER_NUM_SCALE_DIGITS		5
#define FILTER_NUM_LIMIT			INT64CONST(100000000000000)
#define FILTER_NUM_BEYOND			(FILTER_NUM_LIMIT + 1)

/* complexity products saturate here */
#define FILTER_COST_CAP				INT64CONST(1000000000)

/* ------------------------------------------------------------------------
 * A small open-addressing hash table from byte strings to pointers
 * ------------------------------------------------------------------------
 */
typedef struct FHashEntry
{
	uint32		hash;
	int			keylen;
	char	   *key;			/* NULL: a free slot */
	void	   *value;
} FHashEntry;

typedef struct FHash
{
	uint32		size;			/* a power of 2, or 0 */
	uint32		count;
	FHashEntry *slots;
	MemoryContext cxt;
} FHash;

static inline uint32
fh_hash(const char *key, int keylen)
{
	return hash_bytes((const unsigned char *) key, keylen);
}

static void
fh_init(FHash *h, MemoryContext cxt)
{
	h->size = 0;
	h->count = 0;
	h->slots = NULL;
	h->cxt = cxt;
}

static FHashEntry *
fh_find(const FHash *h, const char *key, int keylen, uint32 hash)
{
	uint32		i;

	if (h->size == 0)
		return NULL;
	for (i = hash & (h->size - 1);; i = (i + 1) & (h->size - 1))
	{
		FHashEntry *e = &h->slots[i];

		if (e->key == NULL)
			return NULL;
		if (e->hash == hash && e->keylen == keylen &&
			memcmp(e->key, key, keylen) == 0)
			return e;
	}
}

static void
fh_grow(FHash *h)
{
	uint32		newsize = h->size == 0 ? 16 : h->size * 2;
	FHashEntry *old = h->slots;
	uint32		oldsize = h->size;
	uint32		i;

	h->slots = MemoryContextAllocZero(h->cxt, sizeof(FHashEntry) * newsize);
	h->size = newsize;
	for (i = 0; i < oldsize; i++)
	{
		uint32		j;

		if (old[i].key == NULL)
			continue;
		for (j = old[i].hash & (newsize - 1); h->slots[j].key != NULL;
			 j = (j + 1) & (newsize - 1))
			;
		h->slots[j] = old[i];
	}
	if (old)
		pfree(old);
}

/* Find key or add it (with a copy of the key and a NULL value) */
static FHashEntry *
fh_enter(FHash *h, const char *key, int keylen, uint32 hash)
{
	FHashEntry *e;
	uint32		i;

	e = fh_find(h, key, keylen, hash);
	if (e)
		return e;
	if ((h->count + 1) * 2 > h->size)
		fh_grow(h);
	for (i = hash & (h->size - 1); h->slots[i].key != NULL;
		 i = (i + 1) & (h->size - 1))
		;
	e = &h->slots[i];
	e->hash = hash;
	e->keylen = keylen;
	e->key = MemoryContextAlloc(h->cxt, keylen + 1);
	memcpy(e->key, key, keylen);
	e->key[keylen] = '\0';
	e->value = NULL;
	h->count++;
	return e;
}

/* ------------------------------------------------------------------------
 * Compiled policies and prepared messages
 * ------------------------------------------------------------------------
 */
typedef enum FValType
{
	FV_STRING,
	FV_NUMBER,
	FV_TRUE,
	FV_FALSE,
	FV_NULL
} FValType;

/* One value of a message attribute or of a body path */
typedef struct FVal
{
	uint8		type;			/* FValType */
	uint8		ip_family;		/* 0 not parsed yet, 1 not an address, 4, 6 */
	int			len;
	const char *str;			/* FV_STRING (NUL-terminated) */
	int64		num;			/* FV_NUMBER */
	char	   *lower;			/* lower-cased str, made on demand */
	int			lowerlen;
	uint8		ip[16];
} FVal;

typedef struct FVals
{
	int			n;
	int			cap;
	int			nonnull;		/* values that are not null */
	FVal	   *v;
} FVals;

#define BODY_UNPARSED	0
#define BODY_OBJECT		1
#define BODY_NONE		2		/* no body, or not a JSON object */

struct MsgqFilterMessage
{
	MemoryContext cxt;			/* where lazily made parts go */
	bool		has_attributes;
	FHash		attrs;			/* name -> FVals */
	const char *body;
	int			bodylen;
	int			body_state;
	FHash		paths;			/* joined body path -> FVals */
};

typedef enum FCondKind
{
	/* exact values */
	FC_STRING,
	FC_NUMBER,
	FC_TRUE,
	FC_FALSE,
	FC_NULL,
	/* string patterns */
	FC_PREFIX,
	FC_SUFFIX,
	FC_EQUALS_IGNORE_CASE,
	FC_CIDR,
	/* numbers */
	FC_NUMERIC,
	/* any present value may match */
	FC_ANYTHING_BUT,
	FC_ANYTHING_BUT_PREFIX,
	FC_EXISTS,
	/* matches absence */
	FC_NOT_EXISTS
} FCondKind;

/* The values an anything-but excludes, each type sorted for bsearch */
typedef struct FExcluded
{
	int			nstr;
	char	  **strs;
	int		   *lens;
	int			nnum;
	int64	   *nums;
	bool		no_true;
	bool		no_false;
	bool		no_null;
} FExcluded;

typedef struct FCond
{
	FCondKind	kind;
	int			len;
	char	   *str;			/* string, prefix, suffix, lower-cased
								 * equals-ignore-case, anything-but prefix */
	int64		lo;				/* FC_NUMBER's value; FC_NUMERIC's closed */
	int64		hi;				/* interval */
	uint8		family;			/* FC_CIDR: 4 or 6, the mask bits and the */
	uint8		bits;			/* network with the host bits cleared */
	uint8		ip[16];
	FExcluded  *ex;				/* FC_ANYTHING_BUT */
} FCond;

/* A key of a conjunction: a path and its ORed conditions */
typedef struct FKey
{
	char	   *path;
	int			pathlen;
	uint32		hash;
	int			depth;			/* nesting level, 1 at the top */
	int			id;				/* index while compiling */
	int			ncond;
	FCond	   *conds;
} FKey;

typedef struct FConj
{
	int			nkeys;
	FKey	  **keys;
} FConj;

struct MsgqFilter
{
	MsgqFilterScope scope;
	bool		accept_all;		/* no policy, or {} */
	int			nconj;
	FConj	   *conj;
};

/* ------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------
 */

/*
 * Parse a decimal number into units of 10^-5, rounding half away from zero.
 * Accepts JSON's number syntax and the laxer one of Number attributes (a
 * leading "+", "5." and ".5").  Returns false when s is not a number.  A
 * value beyond +-10^9 sets *beyond and gives +-FILTER_NUM_BEYOND.
 */
static bool
filter_parse_number(const char *s, int len, int64 *result, bool *beyond)
{
	int			i = 0;
	bool		neg = false;
	int			int_start,
				int_end,
				frac_start = 0,
				frac_end = 0;
	int			ndig;
	int64		exponent = 0;
	int			z;
	int64		pointpos;
	int64		k;
	int64		scaled = 0;
	int			round_digit;
	int			t;

#define DIGIT_AT(idx) \
	((idx) < int_end - int_start ? s[int_start + (idx)] - '0' : \
	 s[frac_start + (idx) - (int_end - int_start)] - '0')

	*beyond = false;
	if (i < len && (s[i] == '-' || s[i] == '+'))
	{
		neg = (s[i] == '-');
		i++;
	}
	int_start = i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	int_end = i;
	if (i < len && s[i] == '.')
	{
		i++;
		frac_start = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		frac_end = i;
	}
	ndig = (int_end - int_start) + (frac_end - frac_start);
	if (ndig == 0)
		return false;
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		bool		eneg = false;
		int			estart;

		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
		{
			eneg = (s[i] == '-');
			i++;
		}
		estart = i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
		{
			if (exponent < 1000000)
				exponent = exponent * 10 + (s[i] - '0');
			i++;
		}
		if (i == estart)
			return false;
		if (eneg)
			exponent = -exponent;
	}
	if (i != len)
		return false;

	/* the first significant digit */
	for (z = 0; z < ndig && DIGIT_AT(z) == 0; z++)
		;
	if (z == ndig)
	{
		*result = 0;
		return true;
	}
	/* digits before the decimal point, counted from the first significant */
	pointpos = (int64) (int_end - int_start) - z + exponent;
	if (pointpos > 10)
		*beyond = true;
	else if (pointpos == 10)
	{
		/* 10^9 itself is allowed, anything above it is not */
		if (DIGIT_AT(z) != 1)
			*beyond = true;
		for (t = z + 1; t < ndig && !*beyond; t++)
			if (DIGIT_AT(t) != 0)
				*beyond = true;
	}
	if (*beyond)
	{
		*result = neg ? -FILTER_NUM_BEYOND : FILTER_NUM_BEYOND;
		return true;
	}

	k = pointpos + FILTER_NUM_SCALE_DIGITS;	/* digits kept, at most 15 */
	for (t = 0; t < k; t++)
		scaled = scaled * 10 + (z + t < ndig ? DIGIT_AT(z + t) : 0);
	if (k < 0)
		round_digit = 0;
	else
		round_digit = (z + k < ndig) ? DIGIT_AT(z + k) : 0;
	if (round_digit >= 5)
		scaled++;
	*result = neg ? -scaled : scaled;
	return true;
#undef DIGIT_AT
}

/* ------------------------------------------------------------------------
 * IP addresses
 * ------------------------------------------------------------------------
 */
static bool
filter_parse_ipv4(const char *s, int len, uint8 *out)
{
	int			part;
	int			i = 0;

	for (part = 0; part < 4; part++)
	{
		int			val = 0;
		int			nd = 0;

		while (i < len && s[i] >= '0' && s[i] <= '9' && nd < 4)
		{
			val = val * 10 + (s[i] - '0');
			nd++;
			i++;
		}
		if (nd == 0 || nd > 3 || val > 255)
			return false;
		out[part] = (uint8) val;
		if (part < 3)
		{
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == len;
}

/* Full, compressed ("::") and IPv4-suffixed IPv6 text; no zone index */
static bool
filter_parse_ipv6(const char *s, int len, uint8 *out)
{
	uint16		groups[8];
	int			ng = 0;
	int			gap = -1;
	int			i = 0;
	int			g;

	if (len >= 2 && s[0] == ':' && s[1] == ':')
	{
		gap = 0;
		i = 2;
	}
	else if (len >= 1 && s[0] == ':')
		return false;
	while (i < len)
	{
		int			j = i;
		int			val = 0;

		while (j < len && msgq_hex_digit(s[j]) >= 0)
			j++;
		if (j < len && s[j] == '.')
		{
			uint8		v4[4];

			if (ng > 6 || !filter_parse_ipv4(s + i, len - i, v4))
				return false;
			groups[ng++] = (v4[0] << 8) | v4[1];
			groups[ng++] = (v4[2] << 8) | v4[3];
			i = len;
			break;
		}
		if (j == i || j - i > 4 || ng >= 8)
			return false;
		for (; i < j; i++)
			val = (val << 4) | msgq_hex_digit(s[i]);
		groups[ng++] = (uint16) val;
		if (i == len)
			break;
		if (s[i] != ':')
			return false;
		i++;
		if (i < len && s[i] == ':')
		{
			if (gap >= 0)
				return false;
			gap = ng;
			i++;
		}
		else if (i == len)
			return false;
	}
	if (gap >= 0)
	{
		int			tail = ng - gap;

		if (ng > 7)
			return false;
		memmove(groups + 8 - tail, groups + gap, tail * sizeof(uint16));
		for (g = gap; g < 8 - tail; g++)
			groups[g] = 0;
	}
	else if (ng != 8)
		return false;
	for (g = 0; g < 8; g++)
	{
		out[g * 2] = groups[g] >> 8;
		out[g * 2 + 1] = groups[g] & 0xff;
	}
	return true;
}

/* 4 or 6 for an address, 0 for anything else */
static int
filter_parse_ip(const char *s, int len, uint8 *out)
{
	if (filter_parse_ipv4(s, len, out))
		return 4;
	if (filter_parse_ipv6(s, len, out))
		return 6;
	return 0;
}

static void
filter_mask_ip(const uint8 *ip, int family, int bits, uint8 *out)
{
	int			nbytes = family == 4 ? 4 : 16;
	int			b;

	for (b = 0; b < nbytes; b++)
	{
		int			keep = bits - b * 8;

		if (keep >= 8)
			out[b] = ip[b];
		else if (keep <= 0)
			out[b] = 0;
		else
			out[b] = ip[b] & (uint8) (0xff << (8 - keep));
	}
	for (; b < 16; b++)
		out[b] = 0;
}

/* ------------------------------------------------------------------------
 * Case folding for equals-ignore-case
 * ------------------------------------------------------------------------
 */
static char *
filter_lower(const char *s, int len, int *outlen)
{
	int			i;
	char	   *r;

	for (i = 0; i < len; i++)
		if (IS_HIGHBIT_SET(s[i]))
			break;
	if (i < len)
	{
		/* non-ASCII: the database's default collation decides */
		r = str_tolower(s, len, DEFAULT_COLLATION_OID);
		*outlen = strlen(r);
		return r;
	}
	r = palloc(len + 1);
	for (i = 0; i < len; i++)
		r[i] = pg_ascii_tolower((unsigned char) s[i]);
	r[len] = '\0';
	*outlen = len;
	return r;
}

/* ------------------------------------------------------------------------
 * JSON: nesting prescan and a tree of our own
 * ------------------------------------------------------------------------
 */

/*
 * The deepest nesting of arrays and objects in json text, counting no
 * further than FILTER_MAX_DEPTH + 1.  Brackets inside strings do not count;
 * the parser stops at the first error, so it never nests deeper than this.
 */
static int
filter_json_depth(const char *s, int len)
{
	int			depth = 0;
	int			max = 0;
	bool		in_string = false;
	int			i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
		{
			if (++depth > max)
			{
				max = depth;
				if (max > FILTER_MAX_DEPTH)
					return max;
			}
		}
		else if (c == '}' || c == ']')
			depth--;
	}
	return max;
}

typedef enum FjType
{
	FJ_NULL,
	FJ_TRUE,
	FJ_FALSE,
	FJ_NUMBER,
	FJ_STRING,
	FJ_ARRAY,
	FJ_OBJECT
} FjType;

typedef struct FjNode
{
	FjType		type;
	char	   *str;			/* string value or number text */
	int			len;
	int			n;				/* elements or members */
	int			cap;
	struct FjNode **items;
	char	  **keys;			/* member names */
} FjNode;

typedef struct FjParse
{
	FjNode	   *root;
	FjNode	  **stack;
	int			depth;
	char	   *key;			/* name of the member being parsed */
} FjParse;

static void
fj_add(FjParse *st, FjNode *node)
{
	FjNode	   *parent;

	if (st->depth == 0)
	{
		st->root = node;
		return;
	}
	parent = st->stack[st->depth - 1];
	if (parent->n == parent->cap)
	{
		parent->cap = parent->cap == 0 ? 4 : parent->cap * 2;
		if (parent->items == NULL)
		{
			parent->items = palloc(sizeof(FjNode *) * parent->cap);
			if (parent->type == FJ_OBJECT)
				parent->keys = palloc(sizeof(char *) * parent->cap);
		}
		else
		{
			parent->items = repalloc(parent->items, sizeof(FjNode *) * parent->cap);
			if (parent->type == FJ_OBJECT)
				parent->keys = repalloc(parent->keys, sizeof(char *) * parent->cap);
		}
	}
	if (parent->type == FJ_OBJECT)
		parent->keys[parent->n] = st->key;
	parent->items[parent->n++] = node;
}

static void
fj_open(FjParse *st, FjType type)
{
	FjNode	   *node = palloc0(sizeof(FjNode));

	node->type = type;
	fj_add(st, node);
	st->stack[st->depth++] = node;
}

static MSGQ_JSON_CB_TYPE
fj_object_start(void *arg)
{
	fj_open((FjParse *) arg, FJ_OBJECT);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
fj_array_start(void *arg)
{
	fj_open((FjParse *) arg, FJ_ARRAY);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
fj_end(void *arg)
{
	((FjParse *) arg)->depth--;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
fj_field_start(void *arg, char *fname, bool isnull)
{
	((FjParse *) arg)->key = fname;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
fj_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	FjParse    *st = arg;
	FjNode	   *node = palloc0(sizeof(FjNode));

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			node->type = FJ_STRING;
			break;
		case JSON_TOKEN_NUMBER:
			node->type = FJ_NUMBER;
			break;
		case JSON_TOKEN_TRUE:
			node->type = FJ_TRUE;
			break;
		case JSON_TOKEN_FALSE:
			node->type = FJ_FALSE;
			break;
		default:
			node->type = FJ_NULL;
			break;
	}
	node->str = token;
	node->len = token ? strlen(token) : 0;
	fj_add(st, node);
	MSGQ_JSON_CB_DONE;
}

/*
 * Parse json text into a tree.  NULL when it is not valid JSON or nests
 * deeper than FILTER_MAX_DEPTH; *errdetail (if wanted) then says why.
 */
static FjNode *
fj_parse(const char *text, int len, char **errdetail)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	FjParse		st;
	JsonParseErrorType rc;
	int			depth;

	depth = filter_json_depth(text, len);
	if (depth > FILTER_MAX_DEPTH)
	{
		if (errdetail)
			*errdetail = psprintf("Document nesting depth (%d) exceeds the maximum allowed (%d)",
								  depth, FILTER_MAX_DEPTH);
		return NULL;
	}
	memset(&st, 0, sizeof(st));
	st.stack = palloc(sizeof(FjNode *) * (depth + 1));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = fj_object_start;
	sem.object_end = fj_end;
	sem.array_start = fj_array_start;
	sem.array_end = fj_end;
	sem.object_field_start = fj_field_start;
	sem.scalar = fj_scalar;

	lex = msgq_json_lex((char *) text, len);
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		if (errdetail)
			*errdetail = json_errdetail(rc, lex);
		return NULL;
	}
	return st.root;
}

static int
fj_keycmp(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The first key found twice in one object, or NULL */
static char *
fj_duplicate(FjNode *node)
{
	int			i;

	check_stack_depth();
	if (node->type != FJ_OBJECT && node->type != FJ_ARRAY)
		return NULL;
	if (node->type == FJ_OBJECT && node->n > 1)
	{
		if (node->n <= 8)
		{
			int			j;

			for (i = 0; i < node->n; i++)
				for (j = i + 1; j < node->n; j++)
					if (strcmp(node->keys[i], node->keys[j]) == 0)
						return node->keys[i];
		}
		else
		{
			char	  **sorted = palloc(sizeof(char *) * node->n);

			memcpy(sorted, node->keys, sizeof(char *) * node->n);
			qsort(sorted, node->n, sizeof(char *), fj_keycmp);
			for (i = 1; i < node->n; i++)
				if (strcmp(sorted[i - 1], sorted[i]) == 0)
					return sorted[i];
			pfree(sorted);
		}
	}
	for (i = 0; i < node->n; i++)
	{
		char	   *dup = fj_duplicate(node->items[i]);

		if (dup)
			return dup;
	}
	return NULL;
}

/* A node as Jackson's getText() shows it in error messages */
static const char *
fj_text(FjNode *node)
{
	switch (node->type)
	{
		case FJ_STRING:
		case FJ_NUMBER:
			return node->str;
		case FJ_TRUE:
			return "true";
		case FJ_FALSE:
			return "false";
		case FJ_NULL:
			return "null";
		case FJ_ARRAY:
			return "[";
		case FJ_OBJECT:
			return "{";
	}
	return "";
}

/* ------------------------------------------------------------------------
 * Compiling a policy
 * ------------------------------------------------------------------------
 */
typedef struct FCompile
{
	MsgqFilterScope scope;
	const char *errprefix;
	StringInfoData path;		/* path of the object being walked */
	List	   *keys;			/* every FKey */
	List	   *topnames;		/* MessageBody scope: top-level names */
} FCompile;

/* An AND of keys and of ORs of terms */
typedef struct FTerm
{
	List	   *keys;			/* FKey */
	List	   *ors;			/* List of List of FTerm */
} FTerm;

static void filter_error(FCompile *fc, const char *fmt,...)
			pg_attribute_printf(2, 3) pg_attribute_noreturn();

static void
filter_error(FCompile *fc, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	msgq_aws_error("InvalidParameter", ERRCODE_MSGQ_INVALID_PARAMETER,
				   "%sFilterPolicy: %s", fc->errprefix, buf.data);
}

static int64
policy_number(FCompile *fc, FjNode *node)
{
	int64		v;
	bool		beyond;

	if (!filter_parse_number(node->str, node->len, &v, &beyond))
		filter_error(fc, "Bad number: %s", node->str);	/* not reached */
	if (beyond)
		filter_error(fc, "Value must be between -1.0E9 and 1.0E9, inclusive");
	return v;
}

static int
filter_strcmp_len(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

typedef struct FStrLen
{
	char	   *str;
	int			len;
} FStrLen;

static int
strlen_cmp(const void *a, const void *b)
{
	const FStrLen *x = a;
	const FStrLen *y = b;

	return filter_strcmp_len(x->str, x->len, y->str, y->len);
}

static int
int64_cmp(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static void
compile_excluded_value(FCompile *fc, FjNode *v, FExcluded *ex, List **strs,
					   List **nums)
{
	switch (v->type)
	{
		case FJ_STRING:
			{
				FStrLen    *s = palloc(sizeof(FStrLen));

				s->str = v->str;
				s->len = v->len;
				*strs = lappend(*strs, s);
				break;
			}
		case FJ_NUMBER:
			{
				int64	   *n = palloc(sizeof(int64));

				*n = policy_number(fc, v);
				*nums = lappend(*nums, n);
				break;
			}
		case FJ_TRUE:
			ex->no_true = true;
			break;
		case FJ_FALSE:
			ex->no_false = true;
			break;
		case FJ_NULL:
			ex->no_null = true;
			break;
		default:
			filter_error(fc, "Match value must be String, number, true, false, or null");
	}
}

static void
compile_anything_but(FCompile *fc, FjNode *v, FCond *c)
{
	FExcluded  *ex;
	List	   *strs = NIL;
	List	   *nums = NIL;
	ListCell   *lc;
	int			i;

	if (v->type == FJ_OBJECT)
	{
		FjNode	   *p;

		for (i = 0; i < v->n; i++)
			if (strcmp(v->keys[i], "prefix") != 0)
				filter_error(fc, "Unsupported anything-but pattern: %s", v->keys[i]);
		if (v->n != 1)
			filter_error(fc, "Only one key allowed in match expression");
		p = v->items[0];
		if (p->type != FJ_STRING)
			filter_error(fc, "prefix match pattern must be a string");
		c->kind = FC_ANYTHING_BUT_PREFIX;
		c->str = p->str;
		c->len = p->len;
		return;
	}

	ex = palloc0(sizeof(FExcluded));
	if (v->type == FJ_ARRAY)
	{
		for (i = 0; i < v->n; i++)
			compile_excluded_value(fc, v->items[i], ex, &strs, &nums);
	}
	else
		compile_excluded_value(fc, v, ex, &strs, &nums);

	if (strs != NIL)
	{
		FStrLen    *arr = palloc(sizeof(FStrLen) * list_length(strs));

		i = 0;
		foreach(lc, strs)
			arr[i++] = *(FStrLen *) lfirst(lc);
		qsort(arr, i, sizeof(FStrLen), strlen_cmp);
		ex->nstr = i;
		ex->strs = palloc(sizeof(char *) * i);
		ex->lens = palloc(sizeof(int) * i);
		for (i = 0; i < ex->nstr; i++)
		{
			ex->strs[i] = arr[i].str;
			ex->lens[i] = arr[i].len;
		}
	}
	if (nums != NIL)
	{
		ex->nums = palloc(sizeof(int64) * list_length(nums));
		i = 0;
		foreach(lc, nums)
			ex->nums[i++] = *(int64 *) lfirst(lc);
		qsort(ex->nums, i, sizeof(int64), int64_cmp);
		ex->nnum = i;
	}
	c->kind = FC_ANYTHING_BUT;
	c->ex = ex;
}

static const char *
numeric_op_name(const char *op)
{
	return strcmp(op, "=") == 0 ? "equals" : op;
}

/* {"numeric": [...]}, in event-ruler's order of checks */
static void
compile_numeric(FCompile *fc, FjNode *a, FCond *c)
{
	const char *op1;
	const char *op2;
	int64		v1;
	int64		v2;

	if (a->type != FJ_ARRAY)
		filter_error(fc, "Value of numeric must be an array.");
	if (a->n == 0)
		filter_error(fc, "Invalid member in numeric match: ]");
	if (a->items[0]->type != FJ_STRING)
		filter_error(fc, "Invalid member in numeric match: %s", fj_text(a->items[0]));
	op1 = a->items[0]->str;
	if (strcmp(op1, "=") != 0 && strcmp(op1, "<") != 0 && strcmp(op1, "<=") != 0 &&
		strcmp(op1, ">") != 0 && strcmp(op1, ">=") != 0)
		filter_error(fc, "Unrecognized numeric range operator: %s", op1);
	if (a->n < 2 || a->items[1]->type != FJ_NUMBER)
		filter_error(fc, "Value of %s must be numeric", numeric_op_name(op1));
	v1 = policy_number(fc, a->items[1]);

	c->kind = FC_NUMERIC;
	c->lo = PG_INT64_MIN;
	c->hi = PG_INT64_MAX;
	if (a->n == 2)
	{
		/* values are whole units of 10^-5, so open bounds move by one */
		if (strcmp(op1, "=") == 0)
			c->lo = c->hi = v1;
		else if (strcmp(op1, "<") == 0)
			c->hi = v1 - 1;
		else if (strcmp(op1, "<=") == 0)
			c->hi = v1;
		else if (strcmp(op1, ">") == 0)
			c->lo = v1 + 1;
		else
			c->lo = v1;
		return;
	}
	if (strcmp(op1, ">") != 0 && strcmp(op1, ">=") != 0)
		filter_error(fc, "Too many elements in numeric expression");
	if (a->items[2]->type != FJ_STRING)
		filter_error(fc, "Bad value in numeric range: %s", fj_text(a->items[2]));
	op2 = a->items[2]->str;
	if (strcmp(op2, "<") != 0 && strcmp(op2, "<=") != 0)
		filter_error(fc, "Bad numeric range operator: %s", op2);
	if (a->n < 4 || a->items[3]->type != FJ_NUMBER)
		filter_error(fc, "Value of %s must be numeric", op2);
	v2 = policy_number(fc, a->items[3]);
	if (v2 <= v1)
		filter_error(fc, "Bottom must be less than top");
	if (a->n > 4)
		filter_error(fc, "Too many terms in numeric range expression");
	c->lo = strcmp(op1, ">") == 0 ? v1 + 1 : v1;
	c->hi = strcmp(op2, "<") == 0 ? v2 - 1 : v2;
}

static void
compile_cidr(FCompile *fc, FjNode *v, FCond *c)
{
	const char *s;
	const char *slash;
	const char *m;
	char	   *ip;
	int			iplen;
	int			bits = 0;
	int			ndigits = 0;
	bool		neg = false;
	uint8		addr[16];
	int			family;

	if (v->type != FJ_STRING)
		filter_error(fc, "prefix match pattern must be a string");
	s = v->str;
	slash = strchr(s, '/');
	if (slash == NULL || strchr(slash + 1, '/') != NULL)
		filter_error(fc, "Malformed CIDR, one '/' required");
	m = slash + 1;
	if (*m == '+' || *m == '-')
		neg = (*m++ == '-');
	for (; *m >= '0' && *m <= '9'; m++)
	{
		if (++ndigits <= 9)
			bits = bits * 10 + (*m - '0');
	}
	if (ndigits == 0 || ndigits > 9 || *m != '\0')
		filter_error(fc, "Malformed CIDR, mask bits must be an integer");
	if (neg)
		bits = -bits;
	iplen = slash - s;
	ip = pnstrdup(s, iplen);
	family = filter_parse_ip(ip, iplen, addr);
	if (family == 0 || bits < 0 || bits > (family == 4 ? 32 : 128))
		filter_error(fc, "Nonstandard IP address: %s", ip);
	c->kind = FC_CIDR;
	c->family = family;
	c->bits = bits;
	filter_mask_ip(addr, family, bits, c->ip);
}

/* One element of a key's array of conditions */
static void
compile_condition(FCompile *fc, FjNode *v, FCond *c)
{
	const char *op;
	FjNode	   *arg;

	memset(c, 0, sizeof(FCond));
	switch (v->type)
	{
		case FJ_STRING:
			c->kind = FC_STRING;
			c->str = v->str;
			c->len = v->len;
			return;
		case FJ_NUMBER:
			c->kind = FC_NUMBER;
			c->lo = policy_number(fc, v);
			return;
		case FJ_TRUE:
			c->kind = FC_TRUE;
			return;
		case FJ_FALSE:
			c->kind = FC_FALSE;
			return;
		case FJ_NULL:
			c->kind = FC_NULL;
			return;
		case FJ_ARRAY:
			filter_error(fc, "Match value must be String, number, true, false, or null");
		case FJ_OBJECT:
			break;
	}

	if (v->n != 1)
		filter_error(fc, "Only one key allowed in match expression");
	op = v->keys[0];
	arg = v->items[0];
	if (strcmp(op, "prefix") == 0 || strcmp(op, "suffix") == 0 ||
		strcmp(op, "equals-ignore-case") == 0)
	{
		if (arg->type != FJ_STRING)
			filter_error(fc, "%s match pattern must be a string", op);
		if (op[0] == 'p')
		{
			c->kind = FC_PREFIX;
			c->str = arg->str;
			c->len = arg->len;
		}
		else if (op[0] == 's')
		{
			c->kind = FC_SUFFIX;
			c->str = arg->str;
			c->len = arg->len;
		}
		else
		{
			c->kind = FC_EQUALS_IGNORE_CASE;
			c->str = filter_lower(arg->str, arg->len, &c->len);
		}
	}
	else if (strcmp(op, "anything-but") == 0)
		compile_anything_but(fc, arg, c);
	else if (strcmp(op, "exists") == 0)
	{
		if (arg->type == FJ_TRUE)
			c->kind = FC_EXISTS;
		else if (arg->type == FJ_FALSE)
			c->kind = FC_NOT_EXISTS;
		else
			filter_error(fc, "exists match pattern must be either true or false.");
	}
	else if (strcmp(op, "numeric") == 0)
		compile_numeric(fc, arg, c);
	else if (strcmp(op, "cidr") == 0)
		compile_cidr(fc, arg, c);
	else
		filter_error(fc, "Unrecognized match type %s", op);
}

static void compile_object(FCompile *fc, FjNode *obj, int depth, FTerm *term);

static void
compile_or(FCompile *fc, FjNode *v, int depth, FTerm *term)
{
	List	   *branches = NIL;
	int			i;

	if (v->type != FJ_ARRAY)
		filter_error(fc, "It must be an Array followed with $or.");
	for (i = 0; i < v->n; i++)
	{
		FjNode	   *b = v->items[i];
		FTerm	   *bt;

		if (b->type != FJ_OBJECT)
			filter_error(fc, "Only JSON object is allowed in array of $or relationship.");
		if (b->n == 0)
			filter_error(fc, "Empty objects are not allowed");
		bt = palloc0(sizeof(FTerm));
		compile_object(fc, b, depth, bt);
		branches = lappend(branches, bt);
	}
	if (v->n < 2)
		filter_error(fc, "There must have at least 2 Objects in $or relationship.");
	term->ors = lappend(term->ors, branches);
}

/*
 * Walk one object of the policy at nesting level depth (1 at the top; a
 * $or's branches stay at their object's level), adding its keys to term.
 * fc->path holds the path of the key whose value obj is.
 */
static void
compile_object(FCompile *fc, FjNode *obj, int depth, FTerm *term)
{
	int			base = fc->path.len;
	int			i;

	check_stack_depth();
	for (i = 0; i < obj->n; i++)
	{
		char	   *name = obj->keys[i];
		FjNode	   *v = obj->items[i];

		fc->path.len = base;
		fc->path.data[base] = '\0';
		if (strcmp(name, "$or") == 0)
		{
			compile_or(fc, v, depth, term);
			continue;
		}
		if (depth == 1)
			fc->topnames = lappend(fc->topnames, name);
		if (depth > 1)
			appendStringInfoChar(&fc->path, '.');
		appendStringInfoString(&fc->path, name);

		if (v->type == FJ_OBJECT)
		{
			if (fc->scope == MSGQ_FILTER_ATTRIBUTES)
				msgq_aws_error("InvalidParameter", ERRCODE_MSGQ_INVALID_PARAMETER,
							   "%sFilter policy scope MessageAttributes does not support nested filter policy",
							   fc->errprefix);
			if (v->n == 0)
				filter_error(fc, "Empty objects are not allowed");
			compile_object(fc, v, depth + 1, term);
		}
		else if (v->type == FJ_ARRAY)
		{
			FKey	   *key;
			int			j;

			if (v->n == 0)
				filter_error(fc, "Empty arrays are not allowed");
			key = palloc0(sizeof(FKey));
			key->path = pnstrdup(fc->path.data, fc->path.len);
			key->pathlen = fc->path.len;
			key->depth = depth;
			key->id = list_length(fc->keys);
			key->ncond = v->n;
			key->conds = palloc(sizeof(FCond) * v->n);
			for (j = 0; j < v->n; j++)
				compile_condition(fc, v->items[j], &key->conds[j]);
			term->keys = lappend(term->keys, key);
			fc->keys = lappend(fc->keys, key);
		}
		else
			filter_error(fc, "\"%s\" must be an object or an array", name);
	}
	fc->path.len = base;
	fc->path.data[base] = '\0';
}

static int64
cost_mul(int64 a, int64 b)
{
	if (a == 0 || b == 0)
		return 0;
	if (a > FILTER_COST_CAP / b)
		return FILTER_COST_CAP;
	return a * b;
}

/* Σ over $or branches of Π over keys of values × depth, by distribution */
static int64
term_cost(FTerm *t)
{
	int64		cost = 1;
	ListCell   *lc;

	check_stack_depth();
	foreach(lc, t->keys)
	{
		FKey	   *k = lfirst(lc);

		cost = cost_mul(cost, cost_mul(k->ncond, k->depth));
	}
	foreach(lc, t->ors)
	{
		List	   *branches = lfirst(lc);
		ListCell   *lb;
		int64		sum = 0;

		foreach(lb, branches)
		{
			int64		branch = term_cost(lfirst(lb));

			sum = Min(sum + branch, FILTER_COST_CAP);
		}
		cost = cost_mul(cost, sum);
	}
	return cost;
}

/* Multiply out: a List of conjunctions, each a List of FKey */
static List *
term_expand(FTerm *t)
{
	List	   *result = list_make1(list_copy(t->keys));
	ListCell   *lc;

	check_stack_depth();
	foreach(lc, t->ors)
	{
		List	   *branches = lfirst(lc);
		List	   *next = NIL;
		List	   *alts = NIL;
		ListCell   *lb;
		ListCell   *lr;

		foreach(lb, branches)
			alts = list_concat(alts, term_expand(lfirst(lb)));
		foreach(lr, result)
		{
			foreach(lb, alts)
				next = lappend(next, list_concat_copy(lfirst(lr), lfirst(lb)));
		}
		result = next;
	}
	return result;
}

static int
count_distinct_names(List *names)
{
	int			n = list_length(names);
	char	  **arr;
	int			i;
	int			distinct;
	ListCell   *lc;

	if (n <= 1)
		return n;
	arr = palloc(sizeof(char *) * n);
	i = 0;
	foreach(lc, names)
		arr[i++] = lfirst(lc);
	qsort(arr, n, sizeof(char *), fj_keycmp);
	distinct = 1;
	for (i = 1; i < n; i++)
		if (strcmp(arr[i - 1], arr[i]) != 0)
			distinct++;
	return distinct;
}

static char *
copy_bytes(const char *s, int len)
{
	char	   *r = palloc(len + 1);

	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

/* Copy a compiled condition into CurrentMemoryContext */
static void
copy_cond(FCond *dst, const FCond *src)
{
	*dst = *src;
	if (src->str)
		dst->str = copy_bytes(src->str, src->len);
	if (src->ex)
	{
		const FExcluded *s = src->ex;
		FExcluded  *d = palloc(sizeof(FExcluded));
		int			i;

		*d = *s;
		if (s->nstr > 0)
		{
			d->strs = palloc(sizeof(char *) * s->nstr);
			d->lens = palloc(sizeof(int) * s->nstr);
			for (i = 0; i < s->nstr; i++)
			{
				d->strs[i] = copy_bytes(s->strs[i], s->lens[i]);
				d->lens[i] = s->lens[i];
			}
		}
		if (s->nnum > 0)
		{
			d->nums = palloc(sizeof(int64) * s->nnum);
			memcpy(d->nums, s->nums, sizeof(int64) * s->nnum);
		}
		dst->ex = d;
	}
}

/*
 * Validate and compile in the current (scratch) context; copy the result
 * into target.
 */
static MsgqFilter *
filter_compile_work(const char *policy, int len, MsgqFilterScope scope,
					const char *errprefix, MemoryContext target)
{
	FCompile	fc;
	FjNode	   *root;
	char	   *detail = NULL;
	char	   *dup;
	FTerm	   *term;
	List	   *conjs;
	FKey	  **newkeys;
	MsgqFilter *f;
	MemoryContext old;
	ListCell   *lc;
	int			nkeys;
	int			i;

	memset(&fc, 0, sizeof(fc));
	fc.scope = scope;
	fc.errprefix = errprefix ? errprefix : "";

	if (len > FILTER_MAX_POLICY_BYTES)
		filter_error(&fc, "Filter policy is too long");

	root = fj_parse(policy, len, &detail);
	if (root == NULL)
		filter_error(&fc, "failed to parse JSON. %s", detail ? detail : "");
	dup = fj_duplicate(root);
	if (dup)
		filter_error(&fc, "failed to parse JSON. Duplicate field '%s'", dup);
	if (root->type != FJ_OBJECT)
		filter_error(&fc, "Filter is not an object");

	old = MemoryContextSwitchTo(target);
	f = palloc0(sizeof(MsgqFilter));
	f->scope = scope;
	MemoryContextSwitchTo(old);
	if (root->n == 0)
	{
		f->accept_all = true;
		return f;
	}

	initStringInfo(&fc.path);
	term = palloc0(sizeof(FTerm));
	compile_object(&fc, root, 1, term);

	if (scope == MSGQ_FILTER_ATTRIBUTES)
	{
		List	   *names = NIL;

		foreach(lc, fc.keys)
			names = lappend(names, ((FKey *) lfirst(lc))->path);
		nkeys = count_distinct_names(names);
	}
	else
		nkeys = count_distinct_names(fc.topnames);
	if (nkeys > FILTER_MAX_KEYS)
		filter_error(&fc, "Filter policy can not have more than 5 keys");
	if (term_cost(term) > FILTER_MAX_COMPLEXITY)
		filter_error(&fc, "Filter policy is too complex");

	/* at most 150 conjunctions now: every key costs at least 1 */
	conjs = term_expand(term);

	old = MemoryContextSwitchTo(target);
	newkeys = palloc(sizeof(FKey *) * list_length(fc.keys));
	i = 0;
	foreach(lc, fc.keys)
	{
		FKey	   *k = lfirst(lc);
		FKey	   *nk = palloc(sizeof(FKey));
		int			j;

		*nk = *k;
		nk->path = copy_bytes(k->path, k->pathlen);
		nk->hash = fh_hash(k->path, k->pathlen);
		nk->conds = palloc(sizeof(FCond) * k->ncond);
		for (j = 0; j < k->ncond; j++)
			copy_cond(&nk->conds[j], &k->conds[j]);
		newkeys[i++] = nk;
	}
	f->nconj = list_length(conjs);
	f->conj = palloc(sizeof(FConj) * f->nconj);
	i = 0;
	foreach(lc, conjs)
	{
		List	   *keys = lfirst(lc);
		FConj	   *c = &f->conj[i++];
		ListCell   *lk;
		int			j = 0;

		c->nkeys = list_length(keys);
		c->keys = palloc(sizeof(FKey *) * c->nkeys);
		foreach(lk, keys)
			c->keys[j++] = newkeys[((FKey *) lfirst(lk))->id];
	}
	MemoryContextSwitchTo(old);
	return f;
}

MsgqFilter *
msgq_filter_compile(const char *policy, int len, MsgqFilterScope scope,
					const char *errprefix)
{
	MemoryContext target = CurrentMemoryContext;
	MemoryContext work;
	MsgqFilter *volatile result = NULL;

	if (policy == NULL || len == 0)
	{
		MsgqFilter *f = palloc0(sizeof(MsgqFilter));

		f->scope = scope;
		f->accept_all = true;
		return f;
	}

	work = AllocSetContextCreate(CurrentMemoryContext, "msgq filter compile",
								 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(work);
	PG_TRY();
	{
		result = filter_compile_work(policy, len, scope, errprefix, target);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(target);
		MemoryContextDelete(work);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(target);
	MemoryContextDelete(work);
	return result;
}

/* ------------------------------------------------------------------------
 * Preparing a message
 * ------------------------------------------------------------------------
 */
static FVal *
fvals_add(FVals *vals, MemoryContext cxt)
{
	FVal	   *v;

	if (vals->n == vals->cap)
	{
		vals->cap = vals->cap == 0 ? 2 : vals->cap * 2;
		if (vals->v == NULL)
			vals->v = MemoryContextAlloc(cxt, sizeof(FVal) * vals->cap);
		else
			vals->v = repalloc(vals->v, sizeof(FVal) * vals->cap);
	}
	v = &vals->v[vals->n++];
	memset(v, 0, sizeof(FVal));
	return v;
}

static FVals *
fvals_for(FHash *h, const char *key, int keylen)
{
	FHashEntry *e = fh_enter(h, key, keylen, fh_hash(key, keylen));

	if (e->value == NULL)
		e->value = MemoryContextAllocZero(h->cxt, sizeof(FVals));
	return e->value;
}

/*
 * Add a JSON scalar (token as the parser gives it) to vals, copying what it
 * keeps into cxt.
 */
static void
fvals_add_json(FVals *vals, MemoryContext cxt, JsonTokenType type,
			   const char *token)
{
	FVal	   *v = fvals_add(vals, cxt);
	bool		beyond;

	switch (type)
	{
		case JSON_TOKEN_STRING:
			v->type = FV_STRING;
			v->len = strlen(token);
			v->str = MemoryContextStrdup(cxt, token);
			break;
		case JSON_TOKEN_NUMBER:
			v->type = FV_NUMBER;
			if (!filter_parse_number(token, strlen(token), &v->num, &beyond))
				v->num = 0;		/* the parser accepted it: not reached */
			break;
		case JSON_TOKEN_TRUE:
			v->type = FV_TRUE;
			break;
		case JSON_TOKEN_FALSE:
			v->type = FV_FALSE;
			break;
		default:
			v->type = FV_NULL;
			break;
	}
	if (v->type != FV_NULL)
		vals->nonnull++;
}

static JsonTokenType
fj_token_type(FjNode *node)
{
	switch (node->type)
	{
		case FJ_STRING:
			return JSON_TOKEN_STRING;
		case FJ_NUMBER:
			return JSON_TOKEN_NUMBER;
		case FJ_TRUE:
			return JSON_TOKEN_TRUE;
		case FJ_FALSE:
			return JSON_TOKEN_FALSE;
		default:
			return JSON_TOKEN_NULL;
	}
}

/* A String.Array's elements (or its one scalar); nothing if unparseable */
static void
filter_string_array(FVals *vals, MemoryContext cxt, const char *text, int len)
{
	MemoryContext scratch;
	MemoryContext old;
	FjNode	   *root;
	int			i;

	scratch = AllocSetContextCreate(CurrentMemoryContext, "msgq filter String.Array",
									ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(scratch);
	root = fj_parse(text, len, NULL);
	if (root != NULL)
	{
		if (root->type == FJ_ARRAY)
		{
			for (i = 0; i < root->n; i++)
			{
				FjNode	   *e = root->items[i];

				if (e->type != FJ_ARRAY && e->type != FJ_OBJECT)
					fvals_add_json(vals, cxt, fj_token_type(e), e->str);
			}
		}
		else if (root->type != FJ_OBJECT)
			fvals_add_json(vals, cxt, fj_token_type(root), root->str);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);
}

static void attr_error(const char *fmt, const char *name, const char *type)
			pg_attribute_noreturn();

/*
 * Raise ParameterValueInvalid: "The message attribute 'name' " followed by
 * fmt, whose one %s (if any) is type.
 */
static void
attr_error(const char *fmt, const char *name, const char *type)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "The message attribute '%s' ", name);
	if (type)
		appendStringInfo(&buf, fmt, type);
	else
		appendStringInfoString(&buf, fmt);
	msgq_aws_error("ParameterValueInvalid", ERRCODE_MSGQ_PARAMETER_VALUE_INVALID,
				   "%s", buf.data);
}

static bool
type_is(const char *type, const char *base)
{
	size_t		l = strlen(base);

	return strncmp(type, base, l) == 0 && (type[l] == '\0' || type[l] == '.');
}

/* Parse the attributes ({"name": {"DataType": .., "StringValue": ..}}) */
static void
filter_message_attributes(MsgqFilterMessage *m, Jsonb *attrs)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (!JB_ROOT_IS_OBJECT(attrs))
		msgq_aws_error("ParameterValueInvalid", ERRCODE_MSGQ_PARAMETER_VALUE_INVALID,
					   "Message attributes must be a JSON object of {\"name\": {\"DataType\": ..., \"StringValue\": ...}}");
	if (JB_ROOT_COUNT(attrs) == 0)
		return;
	m->has_attributes = true;

	it = JsonbIteratorInit(&attrs->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *name;
		JsonbValue *dt;
		JsonbValue *sv;
		JsonbValue *bv;
		JsonbContainer *obj;
		char	   *type;
		const char *base;
		FVals	   *vals;

		if (tok != WJB_KEY)
			continue;
		name = pnstrdup(v.val.string.val, v.val.string.len);
		tok = JsonbIteratorNext(&it, &v, true);
		if (tok != WJB_VALUE || v.type != jbvBinary ||
			!JsonContainerIsObject(v.val.binary.data))
			attr_error("must be an object with DataType and StringValue or BinaryValue.",
					   name, NULL);
		obj = v.val.binary.data;
		dt = msgq_jsonb_member(obj, "DataType");
		if (dt == NULL || dt->type != jbvString || dt->val.string.len == 0)
			attr_error("must contain non-empty message attribute type.", name, NULL);
		type = pnstrdup(dt->val.string.val, dt->val.string.len);
		if (type_is(type, "String"))
			base = "String";
		else if (type_is(type, "Number"))
			base = "Number";
		else if (type_is(type, "Binary"))
			base = "Binary";
		else
			attr_error("has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.",
					   name, NULL);

		sv = msgq_jsonb_member(obj, "StringValue");
		bv = msgq_jsonb_member(obj, "BinaryValue");
		if (base[0] == 'B')
		{
			if (bv == NULL && sv != NULL)
				attr_error("with type '%s' must use field 'Binary'.", name, base);
			if (bv == NULL || bv->type != jbvString || bv->val.string.len == 0)
				attr_error("must contain non-empty message attribute value for message attribute type '%s'.",
						   name, base);
			/* Binary attributes take no part in filtering */
			continue;
		}
		if (sv == NULL && bv != NULL)
			attr_error("with type '%s' must use field 'String'.", name, base);
		if (sv == NULL || sv->type != jbvString || sv->val.string.len == 0)
			attr_error("must contain non-empty message attribute value for message attribute type '%s'.",
					   name, base);

		vals = fvals_for(&m->attrs, name, strlen(name));
		vals->n = vals->nonnull = 0;	/* jsonb keeps one of equal names */
		if (strcmp(type, "String.Array") == 0)
			filter_string_array(vals, m->cxt, sv->val.string.val, sv->val.string.len);
		else if (base[0] == 'N')
		{
			FVal	   *fv = fvals_add(vals, m->cxt);
			bool		beyond;

			fv->type = FV_NUMBER;
			if (!filter_parse_number(sv->val.string.val, sv->val.string.len,
									 &fv->num, &beyond))
				msgq_aws_error("ParameterValueInvalid", ERRCODE_MSGQ_PARAMETER_VALUE_INVALID,
							   "Could not cast message attribute '%s' value to number.",
							   name);
			vals->nonnull++;
		}
		else
		{
			FVal	   *fv = fvals_add(vals, m->cxt);

			fv->type = FV_STRING;
			fv->str = pnstrdup(sv->val.string.val, sv->val.string.len);
			fv->len = sv->val.string.len;
			vals->nonnull++;
		}
	}
}

MsgqFilterMessage *
msgq_filter_message(Jsonb *attributes, const char *body, int bodylen)
{
	MsgqFilterMessage *m = palloc0(sizeof(MsgqFilterMessage));

	m->cxt = CurrentMemoryContext;
	fh_init(&m->attrs, m->cxt);
	fh_init(&m->paths, m->cxt);
	m->body = body;
	m->bodylen = bodylen;
	m->body_state = body ? BODY_UNPARSED : BODY_NONE;
	if (attributes)
		filter_message_attributes(m, attributes);
	return m;
}

/* The body's streaming parse: every leaf under its joined path */
typedef struct FBodyParse
{
	MsgqFilterMessage *m;
	StringInfoData path;
	int		   *base;			/* per object level: where its keys start */
	int			level;			/* objects open */
	int			depth;			/* objects and arrays open */
	bool		not_object;
} FBodyParse;

static MSGQ_JSON_CB_TYPE
body_object_start(void *arg)
{
	FBodyParse *st = arg;

	if (st->depth++ == 0)
	{
		st->level = 1;
		st->base[1] = 0;
	}
	else
	{
		st->level++;
		st->base[st->level] = st->path.len;
	}
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
body_object_end(void *arg)
{
	FBodyParse *st = arg;

	st->path.len = st->base[st->level];
	st->path.data[st->path.len] = '\0';
	st->level--;
	st->depth--;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
body_array_start(void *arg)
{
	FBodyParse *st = arg;

	if (st->depth++ == 0)
		st->not_object = true;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
body_array_end(void *arg)
{
	((FBodyParse *) arg)->depth--;
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
body_field_start(void *arg, char *fname, bool isnull)
{
	FBodyParse *st = arg;

	st->path.len = st->base[st->level];
	st->path.data[st->path.len] = '\0';
	if (st->level > 1)
		appendStringInfoChar(&st->path, '.');
	appendStringInfoString(&st->path, fname);
	MSGQ_JSON_CB_DONE;
}

static MSGQ_JSON_CB_TYPE
body_scalar(void *arg, char *token, JsonTokenType tokentype)
{
	FBodyParse *st = arg;

	if (st->depth == 0)
		st->not_object = true;
	else if (!st->not_object && st->level > 0)
		fvals_add_json(fvals_for(&st->m->paths, st->path.data, st->path.len),
					   st->m->cxt, tokentype, token);
	MSGQ_JSON_CB_DONE;
}

static void
filter_message_body(MsgqFilterMessage *m)
{
	MemoryContext scratch;
	MemoryContext old;
	FBodyParse	st;
	JsonSemAction sem;
	JsonLexContext *lex;
	JsonParseErrorType rc;
	int			depth;

	m->body_state = BODY_NONE;
	depth = filter_json_depth(m->body, m->bodylen);
	if (depth == 0 || depth > FILTER_MAX_DEPTH)
		return;

	scratch = AllocSetContextCreate(m->cxt, "msgq filter body",
									ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scratch);
	memset(&st, 0, sizeof(st));
	st.m = m;
	initStringInfo(&st.path);
	st.base = palloc0(sizeof(int) * (depth + 2));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = body_object_start;
	sem.object_end = body_object_end;
	sem.array_start = body_array_start;
	sem.array_end = body_array_end;
	sem.object_field_start = body_field_start;
	sem.scalar = body_scalar;
	lex = msgq_json_lex((char *) m->body, m->bodylen);
	rc = pg_parse_json(lex, &sem);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scratch);

	if (rc == JSON_SUCCESS && !st.not_object)
		m->body_state = BODY_OBJECT;
	else
		fh_init(&m->paths, m->cxt);	/* whatever was filed is not a body */
}

/* The table a scope's keys are looked up in, or NULL: nothing can match */
static FHash *
filter_message_table(MsgqFilterMessage *m, MsgqFilterScope scope)
{
	if (scope == MSGQ_FILTER_ATTRIBUTES)
		return m->has_attributes ? &m->attrs : NULL;
	if (m->body_state == BODY_UNPARSED)
		filter_message_body(m);
	return m->body_state == BODY_OBJECT ? &m->paths : NULL;
}

/* ------------------------------------------------------------------------
 * Matching
 * ------------------------------------------------------------------------
 */
static const char *
fval_lower(MsgqFilterMessage *m, FVal *v, int *len)
{
	if (v->lower == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(m->cxt);

		v->lower = filter_lower(v->str, v->len, &v->lowerlen);
		MemoryContextSwitchTo(old);
	}
	*len = v->lowerlen;
	return v->lower;
}

static int
fval_ip(FVal *v)
{
	if (v->ip_family == 0)
	{
		int			fam = filter_parse_ip(v->str, v->len, v->ip);

		v->ip_family = fam == 0 ? 1 : fam;
	}
	return v->ip_family;
}

static bool
excluded_has_string(const FExcluded *ex, const char *s, int len)
{
	int			lo = 0;
	int			hi = ex->nstr - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = filter_strcmp_len(ex->strs[mid], ex->lens[mid], s, len);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

static bool
excluded_has_number(const FExcluded *ex, int64 x)
{
	return bsearch(&x, ex->nums, ex->nnum, sizeof(int64), int64_cmp) != NULL;
}

static bool
value_matches(MsgqFilterMessage *m, const FCond *c, FVal *v)
{
	switch (c->kind)
	{
		case FC_STRING:
			return v->type == FV_STRING && v->len == c->len &&
				memcmp(v->str, c->str, c->len) == 0;
		case FC_NUMBER:
			return v->type == FV_NUMBER && v->num == c->lo;
		case FC_TRUE:
			return v->type == FV_TRUE;
		case FC_FALSE:
			return v->type == FV_FALSE;
		case FC_NULL:
			return v->type == FV_NULL;
		case FC_PREFIX:
			return v->type == FV_STRING && v->len >= c->len &&
				memcmp(v->str, c->str, c->len) == 0;
		case FC_SUFFIX:
			return v->type == FV_STRING && v->len >= c->len &&
				memcmp(v->str + v->len - c->len, c->str, c->len) == 0;
		case FC_EQUALS_IGNORE_CASE:
			{
				const char *l;
				int			ll;

				if (v->type != FV_STRING)
					return false;
				l = fval_lower(m, v, &ll);
				return ll == c->len && memcmp(l, c->str, ll) == 0;
			}
		case FC_CIDR:
			{
				uint8		masked[16];

				if (v->type != FV_STRING || fval_ip(v) != c->family)
					return false;
				filter_mask_ip(v->ip, c->family, c->bits, masked);
				return memcmp(masked, c->ip, c->family == 4 ? 4 : 16) == 0;
			}
		case FC_NUMERIC:
			return v->type == FV_NUMBER && v->num >= c->lo && v->num <= c->hi;
		case FC_ANYTHING_BUT:
			switch (v->type)
			{
				case FV_STRING:
					return !excluded_has_string(c->ex, v->str, v->len);
				case FV_NUMBER:
					return !excluded_has_number(c->ex, v->num);
				case FV_TRUE:
					return !c->ex->no_true;
				case FV_FALSE:
					return !c->ex->no_false;
				default:
					return !c->ex->no_null;
			}
		case FC_ANYTHING_BUT_PREFIX:
			return v->type == FV_STRING &&
				!(v->len >= c->len && memcmp(v->str, c->str, c->len) == 0);
		case FC_EXISTS:
		case FC_NOT_EXISTS:
			break;
	}
	return false;
}

static bool
key_matches(MsgqFilterMessage *m, const FKey *k, const FHash *table)
{
	FHashEntry *e = fh_find(table, k->path, k->pathlen, k->hash);
	FVals	   *vals = e ? e->value : NULL;
	int			c;

	for (c = 0; c < k->ncond; c++)
	{
		const FCond *cond = &k->conds[c];
		int			i;

		if (cond->kind == FC_EXISTS)
		{
			if (vals && vals->nonnull > 0)
				return true;
			continue;
		}
		if (cond->kind == FC_NOT_EXISTS)
		{
			if (vals == NULL || vals->nonnull == 0)
				return true;
			continue;
		}
		if (vals == NULL)
			continue;
		for (i = 0; i < vals->n; i++)
			if (value_matches(m, cond, &vals->v[i]))
				return true;
	}
	return false;
}

static bool
conj_matches(MsgqFilterMessage *m, const FConj *conj, const FHash *table)
{
	int			k;

	for (k = 0; k < conj->nkeys; k++)
		if (!key_matches(m, conj->keys[k], table))
			return false;
	return true;
}

bool
msgq_filter_matches(const MsgqFilter *filter, MsgqFilterMessage *msg)
{
	FHash	   *table;
	int			c;

	if (filter == NULL || filter->accept_all)
		return true;
	table = filter_message_table(msg, filter->scope);
	if (table == NULL)
		return false;
	for (c = 0; c < filter->nconj; c++)
		if (conj_matches(msg, &filter->conj[c], table))
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Sets of policies
 * ------------------------------------------------------------------------
 */
typedef struct FPosting
{
	int			n;
	int			cap;
	int		   *ids;
} FPosting;

typedef struct FInterval
{
	int64		lo;
	int64		hi;
	int			id;
} FInterval;

/* A centred interval tree node */
typedef struct FITree
{
	int64		center;
	int			n;
	FInterval  *bylo;			/* intervals containing center, lo ascending */
	FInterval  *byhi;			/* the same, hi descending */
	struct FITree *left;		/* intervals entirely below center */
	struct FITree *right;		/* intervals entirely above center */
} FITree;

typedef struct FSetPath
{
	int			id;
	char	   *path;
	int			len;
	uint32		hash;
	bool		exact;			/* exact values filed */
	bool		eic;			/* equals-ignore-case values filed */
	int			nprefix;		/* distinct prefix lengths, ascending */
	int		   *prefix;
	int			nsuffix;
	int		   *suffix;
	int			ncidr;			/* distinct (family << 8 | bits) */
	int		   *cidr;
	int			nint;			/* numeric ranges while building */
	int			capint;
	FInterval  *ints;
	FITree	   *numeric;
	FPosting	present;		/* taken whenever the path has a value */
} FSetPath;

typedef struct FSetConj
{
	int			filter;
	MsgqFilterScope scope;
	const FConj *conj;
} FSetConj;

struct MsgqFilterSet
{
	MemoryContext cxt;
	int			nfilters;
	int			nalways;
	int		   *always;			/* filters that accept every message */
	int			nconj;
	FSetConj   *conj;
	FHash		attr_paths;		/* name -> FSetPath */
	FHash		body_paths;		/* joined path -> FSetPath */
	int			npaths;
	FHash		index;			/* value keys -> FPosting */
	FPosting	scan;			/* verified for every message */
	uint32	   *stamp;			/* per conjunction: candidate of match gen */
	uint32		gen;
	int		   *cand;
	int			ncand;
	StringInfoData key;			/* scratch for index keys */
};

/* how selective a condition is as an anchor: lower is better */
static int
cond_class(const FCond *c)
{
	switch (c->kind)
	{
		case FC_STRING:
		case FC_NUMBER:
		case FC_TRUE:
		case FC_FALSE:
		case FC_NULL:
			return 1;
		case FC_PREFIX:
		case FC_SUFFIX:
		case FC_EQUALS_IGNORE_CASE:
		case FC_CIDR:
			return 2;
		case FC_NUMERIC:
			return 3;
		case FC_ANYTHING_BUT:
		case FC_ANYTHING_BUT_PREFIX:
		case FC_EXISTS:
			return 4;
		case FC_NOT_EXISTS:
			return 5;
	}
	return 5;
}

static void
posting_add(FPosting *p, int id)
{
	if (p->n > 0 && p->ids[p->n - 1] == id)
		return;
	if (p->n == p->cap)
	{
		p->cap = p->cap == 0 ? 4 : p->cap * 2;
		if (p->ids == NULL)
			p->ids = palloc(sizeof(int) * p->cap);
		else
			p->ids = repalloc(p->ids, sizeof(int) * p->cap);
	}
	p->ids[p->n++] = id;
}

static void
intlist_add_distinct(int **arr, int *n, int value)
{
	int			i;

	for (i = 0; i < *n; i++)
		if ((*arr)[i] == value)
			return;
	if (*n == 0)
		*arr = palloc(sizeof(int) * 4);
	else if ((*n & (*n - 1)) == 0 && *n >= 4)
		*arr = repalloc(*arr, sizeof(int) * *n * 2);
	(*arr)[(*n)++] = value;
}

static int
int_cmp(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Start an index key: kind, path id; the caller appends the value */
static void
set_key_start(MsgqFilterSet *set, char kind, const FSetPath *sp)
{
	resetStringInfo(&set->key);
	appendStringInfoChar(&set->key, kind);
	appendBinaryStringInfo(&set->key, (const char *) &sp->id, sizeof(int));
}

static FPosting *
set_index_enter(MsgqFilterSet *set)
{
	FHashEntry *e = fh_enter(&set->index, set->key.data, set->key.len,
							 fh_hash(set->key.data, set->key.len));

	if (e->value == NULL)
		e->value = palloc0(sizeof(FPosting));
	return e->value;
}

static FSetPath *
set_path(MsgqFilterSet *set, MsgqFilterScope scope, const FKey *k)
{
	FHash	   *h = scope == MSGQ_FILTER_ATTRIBUTES ? &set->attr_paths : &set->body_paths;
	FHashEntry *e = fh_enter(h, k->path, k->pathlen, k->hash);

	if (e->value == NULL)
	{
		FSetPath   *sp = palloc0(sizeof(FSetPath));

		sp->id = set->npaths++;
		sp->path = e->key;
		sp->len = k->pathlen;
		sp->hash = k->hash;
		e->value = sp;
	}
	return e->value;
}

static void
set_value_key(MsgqFilterSet *set, const FSetPath *sp, char kind,
			  const char *bytes, int len)
{
	set_key_start(set, kind, sp);
	if (len > 0)
		appendBinaryStringInfo(&set->key, bytes, len);
}

/* File conjunction id under one condition of its anchor key */
static void
set_file_cond(MsgqFilterSet *set, FSetPath *sp, const FCond *c, int id)
{
	switch (c->kind)
	{
		case FC_STRING:
			sp->exact = true;
			set_value_key(set, sp, 's', c->str, c->len);
			break;
		case FC_NUMBER:
			sp->exact = true;
			set_value_key(set, sp, 'n', (const char *) &c->lo, sizeof(int64));
			break;
		case FC_TRUE:
			sp->exact = true;
			set_value_key(set, sp, 't', NULL, 0);
			break;
		case FC_FALSE:
			sp->exact = true;
			set_value_key(set, sp, 'f', NULL, 0);
			break;
		case FC_NULL:
			sp->exact = true;
			set_value_key(set, sp, 'z', NULL, 0);
			break;
		case FC_PREFIX:
			intlist_add_distinct(&sp->prefix, &sp->nprefix, c->len);
			set_value_key(set, sp, 'p', c->str, c->len);
			break;
		case FC_SUFFIX:
			intlist_add_distinct(&sp->suffix, &sp->nsuffix, c->len);
			set_value_key(set, sp, 'x', c->str, c->len);
			break;
		case FC_EQUALS_IGNORE_CASE:
			sp->eic = true;
			set_value_key(set, sp, 'i', c->str, c->len);
			break;
		case FC_CIDR:
			{
				int			mask = (c->family << 8) | c->bits;

				intlist_add_distinct(&sp->cidr, &sp->ncidr, mask);
				set_key_start(set, 'c', sp);
				appendBinaryStringInfo(&set->key, (const char *) &mask, sizeof(int));
				appendBinaryStringInfo(&set->key, (const char *) c->ip,
									   c->family == 4 ? 4 : 16);
				break;
			}
		case FC_NUMERIC:
			if (c->lo <= c->hi)
			{
				if (sp->nint == sp->capint)
				{
					sp->capint = sp->capint == 0 ? 4 : sp->capint * 2;
					if (sp->ints == NULL)
						sp->ints = palloc(sizeof(FInterval) * sp->capint);
					else
						sp->ints = repalloc(sp->ints, sizeof(FInterval) * sp->capint);
				}
				sp->ints[sp->nint].lo = c->lo;
				sp->ints[sp->nint].hi = c->hi;
				sp->ints[sp->nint].id = id;
				sp->nint++;
			}
			return;
		default:
			return;
	}
	posting_add(set_index_enter(set), id);
}

/* File one conjunction under its most selective key */
static void
set_file(MsgqFilterSet *set, int id)
{
	const FSetConj *sc = &set->conj[id];
	const FKey *best = NULL;
	int			best_class = 5;
	int			k;
	int			c;
	FSetPath   *sp;

	for (k = 0; k < sc->conj->nkeys; k++)
	{
		const FKey *key = sc->conj->keys[k];
		int			cls = 1;

		for (c = 0; c < key->ncond; c++)
			cls = Max(cls, cond_class(&key->conds[c]));
		if (cls < best_class || (cls == best_class && best != NULL &&
								 key->ncond < best->ncond))
		{
			best = key;
			best_class = cls;
		}
	}
	if (best == NULL || best_class == 5)
	{
		posting_add(&set->scan, id);
		return;
	}
	sp = set_path(set, sc->scope, best);
	if (best_class == 4)
	{
		posting_add(&sp->present, id);
		return;
	}
	for (c = 0; c < best->ncond; c++)
		set_file_cond(set, sp, &best->conds[c], id);
}

static int
interval_lo_cmp(const void *a, const void *b)
{
	const FInterval *x = a;
	const FInterval *y = b;

	return (x->lo > y->lo) - (x->lo < y->lo);
}

static int
interval_hi_desc_cmp(const void *a, const void *b)
{
	const FInterval *x = a;
	const FInterval *y = b;

	return (x->hi < y->hi) - (x->hi > y->hi);
}

static FITree *
itree_build(FInterval *iv, int n)
{
	FITree	   *t;
	int64	   *ends;
	FInterval  *left;
	FInterval  *right;
	int			nl = 0,
				nr = 0,
				nm = 0;
	int			i;

	check_stack_depth();
	if (n == 0)
		return NULL;
	ends = palloc(sizeof(int64) * n * 2);
	for (i = 0; i < n; i++)
	{
		ends[i * 2] = iv[i].lo;
		ends[i * 2 + 1] = iv[i].hi;
	}
	qsort(ends, n * 2, sizeof(int64), int64_cmp);
	t = palloc0(sizeof(FITree));
	t->center = ends[n];		/* the median end: each side gets <= n/2 */
	pfree(ends);

	left = palloc(sizeof(FInterval) * n);
	right = palloc(sizeof(FInterval) * n);
	t->bylo = palloc(sizeof(FInterval) * n);
	for (i = 0; i < n; i++)
	{
		if (iv[i].hi < t->center)
			left[nl++] = iv[i];
		else if (iv[i].lo > t->center)
			right[nr++] = iv[i];
		else
			t->bylo[nm++] = iv[i];
	}
	t->n = nm;
	t->byhi = palloc(sizeof(FInterval) * nm);
	memcpy(t->byhi, t->bylo, sizeof(FInterval) * nm);
	qsort(t->bylo, nm, sizeof(FInterval), interval_lo_cmp);
	qsort(t->byhi, nm, sizeof(FInterval), interval_hi_desc_cmp);
	t->left = itree_build(left, nl);
	t->right = itree_build(right, nr);
	pfree(left);
	pfree(right);
	return t;
}

static inline void
set_candidate(MsgqFilterSet *set, int id)
{
	if (set->stamp[id] == set->gen)
		return;
	set->stamp[id] = set->gen;
	set->cand[set->ncand++] = id;
}

static void
set_candidates(MsgqFilterSet *set, const FPosting *p)
{
	int			i;

	for (i = 0; i < p->n; i++)
		set_candidate(set, p->ids[i]);
}

static void
itree_stab(MsgqFilterSet *set, const FITree *t, int64 x)
{
	while (t)
	{
		int			i;

		if (x < t->center)
		{
			for (i = 0; i < t->n && t->bylo[i].lo <= x; i++)
				set_candidate(set, t->bylo[i].id);
			t = t->left;
		}
		else if (x > t->center)
		{
			for (i = 0; i < t->n && t->byhi[i].hi >= x; i++)
				set_candidate(set, t->byhi[i].id);
			t = t->right;
		}
		else
		{
			for (i = 0; i < t->n; i++)
				set_candidate(set, t->bylo[i].id);
			break;
		}
	}
}

static void
set_probe_key(MsgqFilterSet *set)
{
	FHashEntry *e = fh_find(&set->index, set->key.data, set->key.len,
							fh_hash(set->key.data, set->key.len));

	if (e)
		set_candidates(set, e->value);
}

/* Collect the candidates one path's message values point to */
static void
set_probe(MsgqFilterSet *set, const FSetPath *sp, FVals *vals,
		  MsgqFilterMessage *m)
{
	int			i;
	int			j;

	if (vals->n > 0)
		set_candidates(set, &sp->present);
	for (i = 0; i < vals->n; i++)
	{
		FVal	   *v = &vals->v[i];

		switch (v->type)
		{
			case FV_STRING:
				if (sp->exact)
				{
					set_value_key(set, sp, 's', v->str, v->len);
					set_probe_key(set);
				}
				for (j = 0; j < sp->nprefix && sp->prefix[j] <= v->len; j++)
				{
					set_value_key(set, sp, 'p', v->str, sp->prefix[j]);
					set_probe_key(set);
				}
				for (j = 0; j < sp->nsuffix && sp->suffix[j] <= v->len; j++)
				{
					set_value_key(set, sp, 'x', v->str + v->len - sp->suffix[j],
								  sp->suffix[j]);
					set_probe_key(set);
				}
				if (sp->eic)
				{
					const char *l;
					int			ll;

					l = fval_lower(m, v, &ll);
					set_value_key(set, sp, 'i', l, ll);
					set_probe_key(set);
				}
				if (sp->ncidr > 0 && fval_ip(v) != 1)
				{
					for (j = 0; j < sp->ncidr; j++)
					{
						int			mask = sp->cidr[j];
						int			family = mask >> 8;
						uint8		masked[16];

						if (family != v->ip_family)
							continue;
						filter_mask_ip(v->ip, family, mask & 0xff, masked);
						set_key_start(set, 'c', sp);
						appendBinaryStringInfo(&set->key, (const char *) &mask, sizeof(int));
						appendBinaryStringInfo(&set->key, (const char *) masked,
											   family == 4 ? 4 : 16);
						set_probe_key(set);
					}
				}
				break;
			case FV_NUMBER:
				if (sp->exact)
				{
					set_value_key(set, sp, 'n', (const char *) &v->num, sizeof(int64));
					set_probe_key(set);
				}
				if (sp->numeric)
					itree_stab(set, sp->numeric, v->num);
				break;
			case FV_TRUE:
			case FV_FALSE:
			case FV_NULL:
				if (sp->exact)
				{
					set_value_key(set, sp, v->type == FV_TRUE ? 't' :
								  v->type == FV_FALSE ? 'f' : 'z', NULL, 0);
					set_probe_key(set);
				}
				break;
		}
	}
}

static void
set_finish_paths(FHash *h)
{
	uint32		i;

	for (i = 0; i < h->size; i++)
	{
		FSetPath   *sp = h->slots[i].value;

		if (h->slots[i].key == NULL)
			continue;
		if (sp->nprefix > 1)
			qsort(sp->prefix, sp->nprefix, sizeof(int), int_cmp);
		if (sp->nsuffix > 1)
			qsort(sp->suffix, sp->nsuffix, sizeof(int), int_cmp);
		if (sp->nint > 0)
		{
			sp->numeric = itree_build(sp->ints, sp->nint);
			pfree(sp->ints);
			sp->ints = NULL;
		}
	}
}

MsgqFilterSet *
msgq_filter_set_build(MsgqFilter **filters, int n, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	MsgqFilterSet *set = palloc0(sizeof(MsgqFilterSet));
	int			i;
	int			c;
	int			nconj = 0;

	set->cxt = cxt;
	set->nfilters = n;
	fh_init(&set->attr_paths, cxt);
	fh_init(&set->body_paths, cxt);
	fh_init(&set->index, cxt);
	initStringInfo(&set->key);
	set->always = palloc(sizeof(int) * Max(n, 1));

	for (i = 0; i < n; i++)
		if (filters[i] != NULL && !filters[i]->accept_all)
			nconj += filters[i]->nconj;
	set->conj = palloc(sizeof(FSetConj) * Max(nconj, 1));
	for (i = 0; i < n; i++)
	{
		MsgqFilter *f = filters[i];

		if (f == NULL || f->accept_all)
		{
			set->always[set->nalways++] = i;
			continue;
		}
		for (c = 0; c < f->nconj; c++)
		{
			FSetConj   *sc = &set->conj[set->nconj];

			sc->filter = i;
			sc->scope = f->scope;
			sc->conj = &f->conj[c];
			set_file(set, set->nconj);
			set->nconj++;
		}
	}
	set_finish_paths(&set->attr_paths);
	set_finish_paths(&set->body_paths);
	set->stamp = palloc0(sizeof(uint32) * Max(set->nconj, 1));
	set->cand = palloc(sizeof(int) * Max(set->nconj, 1));
	MemoryContextSwitchTo(old);
	return set;
}

/* Probe a scope's paths from whichever side has fewer of them */
static void
set_probe_scope(MsgqFilterSet *set, FHash *setpaths, FHash *msgpaths,
				MsgqFilterMessage *m)
{
	uint32		i;

	if (setpaths->count == 0 || msgpaths->count == 0)
		return;
	if (setpaths->count <= msgpaths->count)
	{
		for (i = 0; i < setpaths->size; i++)
		{
			FSetPath   *sp = setpaths->slots[i].value;
			FHashEntry *e;

			if (setpaths->slots[i].key == NULL)
				continue;
			e = fh_find(msgpaths, sp->path, sp->len, sp->hash);
			if (e)
				set_probe(set, sp, e->value, m);
		}
	}
	else
	{
		for (i = 0; i < msgpaths->size; i++)
		{
			FHashEntry *me = &msgpaths->slots[i];
			FHashEntry *e;

			if (me->key == NULL)
				continue;
			e = fh_find(setpaths, me->key, me->keylen, me->hash);
			if (e)
				set_probe(set, e->value, me->value, m);
		}
	}
}

int
msgq_filter_set_match(MsgqFilterSet *set, MsgqFilterMessage *msg, bool *matched)
{
	int			count = 0;
	int			i;

	memset(matched, 0, sizeof(bool) * set->nfilters);
	for (i = 0; i < set->nalways; i++)
	{
		matched[set->always[i]] = true;
		count++;
	}
	if (set->nconj == 0)
		return count;

	if (++set->gen == 0)
	{
		memset(set->stamp, 0, sizeof(uint32) * set->nconj);
		set->gen = 1;
	}
	set->ncand = 0;
	if (msg->has_attributes)
		set_probe_scope(set, &set->attr_paths, &msg->attrs, msg);
	if (set->body_paths.count > 0 &&
		filter_message_table(msg, MSGQ_FILTER_BODY) != NULL)
		set_probe_scope(set, &set->body_paths, &msg->paths, msg);
	set_candidates(set, &set->scan);

	for (i = 0; i < set->ncand; i++)
	{
		const FSetConj *sc = &set->conj[set->cand[i]];
		FHash	   *table;

		if (matched[sc->filter])
			continue;
		table = filter_message_table(msg, sc->scope);
		if (table != NULL && conj_matches(msg, sc->conj, table))
		{
			matched[sc->filter] = true;
			count++;
		}
	}
	return count;
}

/* ------------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------------
 */
static MsgqFilterScope
filter_scope_arg(text *scope)
{
	char	   *s;

	if (scope == NULL)
		return MSGQ_FILTER_ATTRIBUTES;
	s = text_to_cstring(scope);
	if (strcmp(s, "MessageAttributes") == 0)
		return MSGQ_FILTER_ATTRIBUTES;
	if (strcmp(s, "MessageBody") == 0)
		return MSGQ_FILTER_BODY;
	msgq_aws_error("InvalidParameter", ERRCODE_MSGQ_INVALID_PARAMETER,
				   "Invalid parameter: FilterPolicyScope: Invalid value [%s]. Please use either MessageBody or MessageAttributes",
				   s);
}

/*
 * msgq.filter_policy_matches(policy text, scope text DEFAULT NULL,
 *		message_attributes jsonb DEFAULT NULL, body text DEFAULT NULL)
 *		returns boolean
 *
 * Validate policy as set_subscription_attributes does (InvalidParameter
 * with AWS's text) and say whether a message with these attributes (in the
 * send_message shape) and this body passes it.  scope NULL means
 * MessageAttributes.  No policy accepts every message.
 */
Datum
msgq_filter_policy_matches(PG_FUNCTION_ARGS)
{
	MsgqFilterScope scope;
	MemoryContext work;
	MemoryContext old;
	MsgqFilter *filter = NULL;
	MsgqFilterMessage *msg;
	bool		result;

	scope = filter_scope_arg(PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	work = AllocSetContextCreate(CurrentMemoryContext, "msgq filter_policy_matches",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	if (!PG_ARGISNULL(0))
	{
		text	   *policy = PG_GETARG_TEXT_PP(0);

		filter = msgq_filter_compile(VARDATA_ANY(policy), VARSIZE_ANY_EXHDR(policy),
									 scope, "Invalid parameter: ");
	}
	if (PG_ARGISNULL(3))
		msg = msgq_filter_message(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
								  NULL, 0);
	else
	{
		text	   *body = PG_GETARG_TEXT_PP(3);

		msg = msgq_filter_message(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
								  VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	}
	result = msgq_filter_matches(filter, msg);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
	PG_RETURN_BOOL(result);
}

/*
 * msgq_filter_set_check(policies text[], scopes text[],
 *		message_attributes jsonb, body text) returns boolean[]
 *
 * Match one message against policies[i] (with scopes[i]; NULL or missing
 * means MessageAttributes; a NULL policy accepts everything) through a
 * MsgqFilterSet, for tests and benchmarks that compare the set with
 * filter_policy_matches.  Element i of the result says whether policy i
 * matched.
 */
Datum
msgq_filter_set_check(PG_FUNCTION_ARGS)
{
	ArrayType  *policies;
	Datum	   *pdatums;
	bool	   *pnulls;
	int			n;
	Datum	   *sdatums = NULL;
	bool	   *snulls = NULL;
	int			ns = 0;
	MemoryContext work;
	MemoryContext old;
	MsgqFilter **filters;
	MsgqFilterSet *set;
	MsgqFilterMessage *msg;
	bool	   *matched;
	Datum	   *out;
	ArrayType  *result;
	int			i;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	policies = PG_GETARG_ARRAYTYPE_P(0);
	deconstruct_array(policies, TEXTOID, -1, false, TYPALIGN_INT,
					  &pdatums, &pnulls, &n);
	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false,
						  TYPALIGN_INT, &sdatums, &snulls, &ns);

	work = AllocSetContextCreate(CurrentMemoryContext, "msgq filter set check",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	filters = palloc0(sizeof(MsgqFilter *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		MsgqFilterScope scope;
		text	   *p;

		scope = filter_scope_arg(i < ns && !snulls[i] ? DatumGetTextPP(sdatums[i]) : NULL);
		if (pnulls[i])
			continue;
		p = DatumGetTextPP(pdatums[i]);
		filters[i] = msgq_filter_compile(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), scope,
										 "Invalid parameter: ");
	}
	set = msgq_filter_set_build(filters, n, work);
	if (PG_ARGISNULL(3))
		msg = msgq_filter_message(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
								  NULL, 0);
	else
	{
		text	   *body = PG_GETARG_TEXT_PP(3);

		msg = msgq_filter_message(PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2),
								  VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body));
	}
	matched = palloc(sizeof(bool) * Max(n, 1));
	msgq_filter_set_match(set, msg, matched);

	MemoryContextSwitchTo(old);
	out = palloc(sizeof(Datum) * Max(n, 1));
	for (i = 0; i < n; i++)
		out[i] = BoolGetDatum(matched[i]);
	result = construct_array(out, n, BOOLOID, 1, true, TYPALIGN_CHAR);
	MemoryContextDelete(work);
	PG_RETURN_ARRAYTYPE_P(result);
}

/*
 * msgq_filter_set_bench(policies text[], scopes text[],
 *		message_attributes jsonb, body text, messages int, use_set boolean)
 *		returns float8[]
 *
 * For bench/filter.sh: compile the policies once, build a set of them (or,
 * use_set false, keep them for msgq_filter_matches one by one), then
 * prepare and match the message messages times, each time afresh.
 * Returns {milliseconds to compile and build, microseconds per message,
 * policies the message matched}.
 */
Datum
msgq_filter_set_bench(PG_FUNCTION_ARGS)
{
	Datum	   *pdatums;
	bool	   *pnulls;
	int			n;
	Datum	   *sdatums = NULL;
	bool	   *snulls = NULL;
	int			ns = 0;
	int			messages = PG_ARGISNULL(4) ? 1 : Max(PG_GETARG_INT32(4), 1);
	bool		use_set = PG_ARGISNULL(5) ? true : PG_GETARG_BOOL(5);
	Jsonb	   *attrs = PG_ARGISNULL(2) ? NULL : PG_GETARG_JSONB_P(2);
	text	   *body = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	MemoryContext work;
	MemoryContext per_message;
	MemoryContext old;
	MsgqFilter **filters;
	MsgqFilterSet *set = NULL;
	bool	   *matched;
	instr_time	start;
	instr_time	built;
	instr_time	done;
	int			nmatched = 0;
	int			i;
	int			m;
	Datum		out[3];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
					  &pdatums, &pnulls, &n);
	if (!PG_ARGISNULL(1))
		deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false,
						  TYPALIGN_INT, &sdatums, &snulls, &ns);

	work = AllocSetContextCreate(CurrentMemoryContext, "msgq filter set bench",
								 ALLOCSET_DEFAULT_SIZES);
	per_message = AllocSetContextCreate(work, "msgq filter bench message",
										ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	INSTR_TIME_SET_CURRENT(start);
	filters = palloc0(sizeof(MsgqFilter *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		MsgqFilterScope scope;
		text	   *p;

		scope = filter_scope_arg(i < ns && !snulls[i] ? DatumGetTextPP(sdatums[i]) : NULL);
		if (pnulls[i])
			continue;
		p = DatumGetTextPP(pdatums[i]);
		filters[i] = msgq_filter_compile(VARDATA_ANY(p), VARSIZE_ANY_EXHDR(p), scope,
										 "Invalid parameter: ");
	}
	if (use_set)
		set = msgq_filter_set_build(filters, n, work);
	matched = palloc(sizeof(bool) * Max(n, 1));
	INSTR_TIME_SET_CURRENT(built);

	for (m = 0; m < messages; m++)
	{
		MsgqFilterMessage *msg;

		CHECK_FOR_INTERRUPTS();
		MemoryContextSwitchTo(per_message);
		msg = msgq_filter_message(attrs, body ? VARDATA_ANY(body) : NULL,
								  body ? VARSIZE_ANY_EXHDR(body) : 0);
		if (use_set)
			nmatched = msgq_filter_set_match(set, msg, matched);
		else
		{
			nmatched = 0;
			for (i = 0; i < n; i++)
				if (msgq_filter_matches(filters[i], msg))
					nmatched++;
		}
		MemoryContextSwitchTo(work);
		MemoryContextReset(per_message);
	}
	INSTR_TIME_SET_CURRENT(done);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);

	INSTR_TIME_SUBTRACT(done, built);
	INSTR_TIME_SUBTRACT(built, start);
	out[0] = Float8GetDatum(INSTR_TIME_GET_MILLISEC(built));
	out[1] = Float8GetDatum(INSTR_TIME_GET_MICROSEC(done) / (double) messages);
	out[2] = Float8GetDatum((double) nmatched);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, 3, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*-------------------------------------------------------------------------
 *
 * filter_fuzz.c
 *	  A mutation fuzzer for the filter-policy parser and matcher
 *	  (src/filter.c), run inside a backend.
 *
 * filter.c is backend code (palloc, ereport, PostgreSQL's JSON lexer and
 * jsonb), so its fuzzer runs where it does: msgq_filter_fuzz() is an entry
 * point of the library that the tests create as a SQL function
 * (sql/filter_fuzz.sql for a short run in `make test`, test/fuzz/filter.sh
 * for long runs by hand).  Each input is
 *
 *	- a policy: a seed policy (or an input kept earlier) with one
 *	  mutation, or two to four stacked: bit flips, "interesting" bytes,
 *	  fragments of JSON and of the policy language inserted anywhere
 *	  (operators, huge and tiny numbers, escapes, brackets), well-formed
 *	  values inserted after a '[' and members after a '{' (so that many
 *	  inputs get past the JSON parser into the policy rules), ranges
 *	  deleted, duplicated (nesting bombs) or spliced from another input,
 *	  truncation; an input that is not valid text in the database encoding
 *	  (which SQL could not pass) is counted and skipped;
 *	- a message: mutated attributes (send_message shape) and body.
 *
 * Each input runs in a subtransaction, as a PL/pgSQL exception block would:
 * the policy is compiled; an error must be InvalidParameter (or, for the
 * attributes, ParameterValueInvalid or a JSON syntax error): anything else
 * is a finding.  A compiled policy is matched against the message both
 * alone (msgq_filter_matches) and through a one-policy MsgqFilterSet: the
 * answers must agree.  Half the inputs that compile, and those that fail
 * with an error of a shape not seen before (the message without what it
 * quotes of the input), join the corpus: a weak form of guidance, by
 * validity and error paths instead of code coverage, which a backend
 * module cannot get from libFuzzer.  Findings reported: unexpected
 * errors, disagreements, inputs slower than max_input_ms, and memory that
 * outlives the inputs (everything outside the fuzzer's own context, in
 * the whole backend, is measured after a warm-up and at the end).
 *
 * IDENTIFICATION
 *	  src/filter_fuzz.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "msgq.h"
#include "filter.h"

PG_FUNCTION_INFO_V1(msgq_filter_fuzz);

#define FUZZ_MAX_CORPUS		512
#define FUZZ_MAX_INPUT		8192
#define FUZZ_MAX_ERRORS		256
#define FUZZ_WARMUP			200

static const char *const seed_policies[] = {
	"{\"store\":[\"example_corp\"],\"event\":[\"order_placed\",\"order_cancelled\"]}",
	"{\"price\":[{\"numeric\":[\">\",0,\"<=\",150]}],\"code\":[{\"prefix\":\"ab\"}]}",
	"{\"color\":[{\"anything-but\":[\"red\",\"blue\"]}],\"size\":[{\"exists\":false}]}",
	"{\"name\":[{\"suffix\":\".png\"},{\"equals-ignore-case\":\"README\"}]}",
	"{\"ip\":[{\"cidr\":\"10.0.0.0/24\"}],\"path\":[{\"wildcard\":\"a*b*c\"}]}",
	"{\"$or\":[{\"a\":[\"1\"]},{\"b\":[{\"numeric\":[\"=\",3.5]}]}],\"c\":[true,null]}",
	"{\"k\":[{\"anything-but\":{\"prefix\":\"x\"}}],\"n\":[{\"numeric\":[\"<\",-1e9]}]}",
	"{\"detail\":{\"order\":{\"id\":[{\"numeric\":[\">=\",100]}],\"tags\":[\"new\"]}}}",
	"{\"a.b\":[\"x\"],\"$or\":[{\"c\":{\"d\":[{\"exists\":true}]}},{\"e\":[\"f\"]}]}",
	"{}",
};

static const char *const seed_attributes[] = {
	"{\"store\":{\"DataType\":\"String\",\"StringValue\":\"example_corp\"},"
	"\"price\":{\"DataType\":\"Number\",\"StringValue\":\"99.5\"}}",
	"{\"color\":{\"DataType\":\"String.Array\",\"StringValue\":\"[\\\"red\\\",3,true,null]\"},"
	"\"ip\":{\"DataType\":\"String\",\"StringValue\":\"10.0.0.7\"}}",
	"{\"k\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAEC\"},"
	"\"n\":{\"DataType\":\"Number.int\",\"StringValue\":\"-2000000000\"}}",
};

static const char *const seed_bodies[] = {
	"{\"detail\":{\"order\":{\"id\":150,\"tags\":[\"new\",\"big\"]}},\"a\":{\"b\":\"x\"}}",
	"{\"store\":\"example_corp\",\"price\":[1,2,3],\"c\":{\"d\":null},\"e\":\"f\"}",
	"not json at all",
};

/* Fragments of the policy language and of JSON, for insertions */
static const char *const fragments[] = {
	"{", "}", "[", "]", ":", ",", "\"", "\\", "\\u0000", "\\ud800", "\"$or\":",
	"{\"numeric\":[\">\",1e309]}", "{\"numeric\":[\"<\",-1e-400]}", "1e308",
	"123456789012345678901234567890", "-0", "0.0000001", "\"prefix\"",
	"\"anything-but\"", "{\"exists\":false}", "{\"exists\":\"yes\"}",
	"\"cidr\"", "\"10.0.0.0/33\"", "\"::1/129\"", "\"wildcard\"", "\"***\"",
	"\"equals-ignore-case\"", "\"suffix\"", "null", "true", "false", "[]", "{}",
	"[[[[[[[[", "{\"a\":{\"a\":{\"a\":{\"a\":", "\"\xc3\xa9\"", "\"\xff\xfe\"",
	"\"numeric\":[\"=\",\"=\",1]", "\"$and\":", "{\"$or\":[{}]}",
};

/* Values and members that keep a policy well-formed JSON */
static const char *const values[] = {
	"\"x\"", "\"\"", "1e308", "-1e-308", "0", "true", "null", "12345678901234567",
	"{\"numeric\":[\">\",1]}", "{\"numeric\":[\">=\",-5,\"<\",1e9]}",
	"{\"numeric\":[\"=\",0.1]}", "{\"prefix\":\"\"}", "{\"suffix\":\"z\"}",
	"{\"anything-but\":[1,\"a\"]}", "{\"anything-but\":{\"suffix\":\"q\"}}",
	"{\"exists\":true}", "{\"exists\":false}", "{\"cidr\":\"1.2.3.4/0\"}",
	"{\"cidr\":\"2001:db8::/32\"}", "{\"wildcard\":\"**\"}",
	"{\"wildcard\":\"a*b\"}", "{\"equals-ignore-case\":\"X\"}",
	"[\"nested\"]", "{\"a\":[\"b\"]}",
};
static const char *const members[] = {
	"\"k\":[\"v\"],", "\"price\":[{\"numeric\":[\"<\",100]}],",
	"\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]}],", "\"detail\":{\"x\":[\"y\"]},",
	"\"store\":[\"example_corp\"],", "\"a.b\":[{\"exists\":true}],",
	"\"ip\":[{\"cidr\":\"10.0.0.0/8\"}],",
};

static const char interesting[] = "{}[]\":,\\0-e.+ \t\n\x80\xff$*";

typedef struct FuzzInput
{
	char	   *data;
	int			len;
} FuzzInput;

typedef struct Fuzz
{
	pg_prng_state prng;
	MemoryContext cxt;			/* corpus and findings: the fuzzer's own */
	FuzzInput	corpus[FUZZ_MAX_CORPUS];
	int			ncorpus;
	char	   *errors[FUZZ_MAX_ERRORS];	/* distinct error messages seen */
	int			nerrors;
	int64		inputs;
	int64		not_text;		/* mutated into no valid text: skipped */
	int64		compiled;
	int64		rejected;
	int64		matched;
	int64		disagreements;
	int64		unexpected;
	int64		slow;
	double		max_ms;
	StringInfoData findings;	/* the first few, described */
	int			nfindings;
} Fuzz;

static int
fuzz_rand(Fuzz *fz, int n)
{
	return n <= 1 ? 0 : (int) pg_prng_uint64_range(&fz->prng, 0, n - 1);
}

static void
fuzz_finding(Fuzz *fz, const char *what, const char *input, int len)
{
	if (fz->nfindings++ >= 5)
		return;
	appendStringInfo(&fz->findings, "%s%s: %.*s", fz->findings.len > 0 ? "; " : "",
					 what, Min(len, 200), input);
}

/* One to four mutations of src into a new buffer (in CurrentMemoryContext) */
static FuzzInput
fuzz_mutate(Fuzz *fz, const FuzzInput *src)
{
	StringInfoData buf;
	int			n = fuzz_rand(fz, 4) == 0 ? 2 + fuzz_rand(fz, 3) : 1;
	FuzzInput	out;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, src->data, src->len);
	while (n-- > 0)
	{
		int			pos = fuzz_rand(fz, buf.len + 1);
		int			kind = fuzz_rand(fz, 12);

		switch (kind)
		{
			case 0:				/* flip a bit */
				if (buf.len > 0)
					buf.data[fuzz_rand(fz, buf.len)] ^= (char) (1 << fuzz_rand(fz, 8));
				break;
			case 1:				/* an interesting byte */
				if (buf.len > 0)
					buf.data[fuzz_rand(fz, buf.len)] =
						interesting[fuzz_rand(fz, sizeof(interesting) - 1)];
				break;
			case 2:				/* insert a fragment */
			case 3:
				{
					const char *f = fragments[fuzz_rand(fz, lengthof(fragments))];
					StringInfoData t;

					initStringInfo(&t);
					appendBinaryStringInfo(&t, buf.data, pos);
					appendStringInfoString(&t, f);
					appendBinaryStringInfo(&t, buf.data + pos, buf.len - pos);
					pfree(buf.data);
					buf = t;
				}
				break;
			case 4:				/* delete a range */
				if (pos < buf.len)
				{
					int			l = 1 + fuzz_rand(fz, Min(buf.len - pos, 32));

					memmove(buf.data + pos, buf.data + pos + l, buf.len - pos - l);
					buf.len -= l;
				}
				break;
			case 5:				/* duplicate a range, over and over */
				if (pos < buf.len && buf.len < FUZZ_MAX_INPUT / 2)
				{
					int			l = 1 + fuzz_rand(fz, Min(buf.len - pos, 64));
					int			times = 1 + fuzz_rand(fz, 16);
					char	   *piece = pnstrdup(buf.data + pos, l);
					StringInfoData t;

					initStringInfo(&t);
					appendBinaryStringInfo(&t, buf.data, pos);
					while (times-- > 0 && t.len < FUZZ_MAX_INPUT)
						appendBinaryStringInfo(&t, piece, l);
					appendBinaryStringInfo(&t, buf.data + pos, buf.len - pos);
					pfree(buf.data);
					buf = t;
				}
				break;
			case 6:				/* splice another input's tail */
				if (fz->ncorpus > 0)
				{
					const FuzzInput *o = &fz->corpus[fuzz_rand(fz, fz->ncorpus)];
					int			from = fuzz_rand(fz, o->len + 1);

					buf.len = pos;
					appendBinaryStringInfo(&buf, o->data + from, o->len - from);
				}
				break;
			case 7:				/* truncate */
				buf.len = pos;
				break;
			default:			/* a value after a '[' or a member after a '{' */
				{
					int			tries;
					bool		member = kind >= 10;
					char		want = member ? '{' : '[';

					for (tries = 0; tries < 8 && buf.len > 0; tries++)
					{
						int			at = fuzz_rand(fz, buf.len);

						if (buf.data[at] == want)
						{
							const char *f = member ?
								members[fuzz_rand(fz, lengthof(members))] :
								values[fuzz_rand(fz, lengthof(values))];
							StringInfoData t;

							initStringInfo(&t);
							appendBinaryStringInfo(&t, buf.data, at + 1);
							appendStringInfoString(&t, f);
							if (!member && buf.data[at + 1] != ']')
								appendStringInfoChar(&t, ',');
							appendBinaryStringInfo(&t, buf.data + at + 1, buf.len - at - 1);
							pfree(buf.data);
							buf = t;
							break;
						}
					}
				}
				break;
		}
		if (buf.len > FUZZ_MAX_INPUT)
			buf.len = FUZZ_MAX_INPUT;
		buf.data[buf.len] = '\0';
	}
	out.data = buf.data;
	out.len = buf.len;
	return out;
}

static void
fuzz_keep(Fuzz *fz, const FuzzInput *in)
{
	MemoryContext old = MemoryContextSwitchTo(fz->cxt);
	int			slot;

	if (fz->ncorpus < FUZZ_MAX_CORPUS)
		slot = fz->ncorpus++;
	else
	{
		/* the seeds stay */
		slot = lengthof(seed_policies) + fuzz_rand(fz, FUZZ_MAX_CORPUS - lengthof(seed_policies));
		pfree(fz->corpus[slot].data);
	}
	fz->corpus[slot].data = pnstrdup(in->data, in->len);
	fz->corpus[slot].len = in->len;
	MemoryContextSwitchTo(old);
}

/* Whether an error message is new (and remember it) */
static bool
fuzz_new_error(Fuzz *fz, const char *message)
{
	StringInfoData shape;
	bool		quoted = false;
	const char *c;
	int			i;

	/*
	 * The message up to what it quotes of the input (a token, a match type,
	 * a value), without digits
	 */
	static const char *const markers[] = {"Token ", "found ", "type ", "value ",
	"member in", "field ", "operator: ", "address: ", "pattern: ", ": {", ": ["};

	initStringInfo(&shape);
	for (c = message; *c; c++)
	{
		for (i = 0; i < lengthof(markers); i++)
			if (strncmp(c, markers[i], strlen(markers[i])) == 0)
				break;
		if (i < lengthof(markers))
		{
			appendStringInfoString(&shape, markers[i]);
			break;
		}
		if (*c == '"')
			quoted = !quoted;
		else if (!quoted && !isdigit((unsigned char) *c))
			appendStringInfoChar(&shape, *c);
	}
	for (i = 0; i < fz->nerrors; i++)
		if (strcmp(fz->errors[i], shape.data) == 0)
			return false;
	if (fz->nerrors < FUZZ_MAX_ERRORS)
		fz->errors[fz->nerrors++] = MemoryContextStrdup(fz->cxt, shape.data);
	return true;
}

/* Memory of the whole backend outside the fuzzer's own context */
static Size
fuzz_memory(Fuzz *fz)
{
	return MemoryContextMemAllocated(TopMemoryContext, true) -
		MemoryContextMemAllocated(fz->cxt, true);
}

/* One input: mutate, compile, match, compare */
static void
fuzz_one(Fuzz *fz, MemoryContext iter)
{
	MemoryContext old = MemoryContextSwitchTo(iter);
	ResourceOwner owner = CurrentResourceOwner;
	FuzzInput	policy;
	FuzzInput	attrs_src;
	FuzzInput	body_src;
	FuzzInput	attrs;
	FuzzInput	body;
	MsgqFilterScope scope = fuzz_rand(fz, 2) ? MSGQ_FILTER_BODY : MSGQ_FILTER_ATTRIBUTES;
	volatile bool compiled = false;
	volatile bool attrs_parsed = false;
	instr_time	start;
	instr_time	elapsed;
	double		ms;

	fz->inputs++;
	policy = fuzz_mutate(fz, &fz->corpus[fuzz_rand(fz, fz->ncorpus)]);
	/* what SQL could pass: text in the database encoding, so no NUL either */
	if (!pg_verify_mbstr(GetDatabaseEncoding(), policy.data, policy.len, true))
	{
		fz->not_text++;
		MemoryContextSwitchTo(old);
		MemoryContextReset(iter);
		return;
	}
	attrs_src.data = (char *) seed_attributes[fuzz_rand(fz, lengthof(seed_attributes))];
	attrs_src.len = strlen(attrs_src.data);
	attrs = fuzz_rand(fz, 3) ? attrs_src : fuzz_mutate(fz, &attrs_src);
	body_src.data = (char *) seed_bodies[fuzz_rand(fz, lengthof(seed_bodies))];
	body_src.len = strlen(body_src.data);
	body = fuzz_rand(fz, 3) ? body_src : fuzz_mutate(fz, &body_src);
	if (!pg_verify_mbstr(GetDatabaseEncoding(), body.data, body.len, true))
		body = body_src;
	if (!pg_verify_mbstr(GetDatabaseEncoding(), attrs.data, attrs.len, true))
		attrs = attrs_src;

	INSTR_TIME_SET_CURRENT(start);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(iter);
	PG_TRY();
	{
		MsgqFilter *filter;
		MsgqFilterMessage *msg;
		MsgqFilterSet *set;
		Jsonb	   *jattrs;
		bool		alone;
		bool		in_set;

		filter = msgq_filter_compile(policy.data, policy.len, scope, "Invalid parameter: ");
		compiled = true;
		jattrs = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(attrs.data)));
		attrs_parsed = true;
		msg = msgq_filter_message(jattrs, body.data, body.len);
		alone = msgq_filter_matches(filter, msg);
		set = msgq_filter_set_build(&filter, 1, iter);
		msgq_filter_set_match(set, msg, &in_set);
		if (alone != in_set)
		{
			fz->disagreements++;
			fuzz_finding(fz, "set and single matcher disagree on policy", policy.data, policy.len);
		}
		if (alone)
			fz->matched++;
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(iter);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(iter);

		if (!compiled && edata->sqlerrcode == ERRCODE_MSGQ_INVALID_PARAMETER)
		{
			fz->rejected++;
			if (fuzz_new_error(fz, edata->message))
				fuzz_keep(fz, &policy);
		}
		else if (compiled && !attrs_parsed)
		{
			/*
			 * jsonb_in refused the mutated attributes (syntax, a number out
			 * of numeric's range, ...): never msgq's input, since SQL hands
			 * msgq the attributes as jsonb already
			 */
		}
		else if (attrs_parsed && edata->sqlerrcode == ERRCODE_MSGQ_PARAMETER_VALUE_INVALID)
		{
			/* attributes not in send_message's shape: a valid refusal */
		}
		else
		{
			fz->unexpected++;
			fuzz_finding(fz, psprintf("unexpected error %s \"%s\"%s on policy",
									  unpack_sql_state(edata->sqlerrcode), edata->message,
									  compiled ? psprintf(" (compiled; body %.*s; attributes %.*s)",
														  Min(body.len, 200), body.data,
														  Min(attrs.len, 200), attrs.data) : ""),
						 policy.data, policy.len);
		}
	}
	PG_END_TRY();
	CurrentResourceOwner = owner;

	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	ms = INSTR_TIME_GET_MILLISEC(elapsed);
	if (ms > fz->max_ms)
		fz->max_ms = ms;
	if (compiled)
	{
		fz->compiled++;
		if (fuzz_rand(fz, 2) == 0)
			fuzz_keep(fz, &policy);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(iter);
}

/*
 * msgq_filter_fuzz(seed bigint, iterations int, max_input_ms int) returns jsonb
 *
 * Run iterations inputs from the given seed; returns the counts and the
 * findings (see the file header).
 */
Datum
msgq_filter_fuzz(PG_FUNCTION_ARGS)
{
	int64		seed = PG_GETARG_INT64(0);
	int32		iterations = PG_GETARG_INT32(1);
	int32		max_input_ms = PG_GETARG_INT32(2);
	Fuzz	   *fz;
	MemoryContext cxt;
	MemoryContext iter;
	Size		mem_start = 0;
	Size		mem_end;
	int64		leaked;
	int			i;
	StringInfoData out;

	if (iterations < 0 || max_input_ms <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("iterations must be at least 0 and max_input_ms above 0")));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "msgq filter fuzz",
								ALLOCSET_DEFAULT_SIZES);
	fz = MemoryContextAllocZero(cxt, sizeof(Fuzz));
	fz->cxt = cxt;
	pg_prng_seed(&fz->prng, (uint64) seed);
	for (i = 0; i < lengthof(seed_policies); i++)
	{
		fz->corpus[i].data = MemoryContextStrdup(cxt, seed_policies[i]);
		fz->corpus[i].len = strlen(seed_policies[i]);
	}
	fz->ncorpus = lengthof(seed_policies);
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&fz->findings);
		MemoryContextSwitchTo(old);
	}
	iter = AllocSetContextCreate(cxt, "msgq filter fuzz input", ALLOCSET_DEFAULT_SIZES);

	for (i = 0; i < iterations; i++)
	{
		double		before = fz->max_ms;

		CHECK_FOR_INTERRUPTS();
		if (i == Min(FUZZ_WARMUP, iterations - 1))
			mem_start = fuzz_memory(fz);
		fz->max_ms = 0;
		fuzz_one(fz, iter);
		if (fz->max_ms > max_input_ms)
		{
			fz->slow++;
			fuzz_finding(fz, psprintf("input took %.1f ms", fz->max_ms), "", 0);
		}
		fz->max_ms = Max(before, fz->max_ms);
	}
	mem_end = fuzz_memory(fz);
	leaked = iterations > 0 ? (int64) mem_end - (int64) mem_start : 0;

	initStringInfo(&out);
	appendStringInfo(&out,
					 "{\"inputs\": " INT64_FORMAT ", \"not_text\": " INT64_FORMAT
					 ", \"compiled\": " INT64_FORMAT
					 ", \"rejected\": " INT64_FORMAT ", \"matched\": " INT64_FORMAT
					 ", \"disagreements\": " INT64_FORMAT ", \"unexpected\": " INT64_FORMAT
					 ", \"slow\": " INT64_FORMAT ", \"max_input_ms\": %.3f"
					 ", \"leaked_bytes\": " INT64_FORMAT ", \"corpus\": %d"
					 ", \"distinct_errors\": %d, \"findings\": ",
					 fz->inputs, fz->not_text, fz->compiled, fz->rejected, fz->matched,
					 fz->disagreements, fz->unexpected, fz->slow, fz->max_ms,
					 leaked, fz->ncorpus, fz->nerrors);
	escape_json(&out, fz->findings.data);
	appendStringInfoString(&out, ", \"error_shapes\": [");
	for (i = 0; i < fz->nerrors; i++)
	{
		if (i > 0)
			appendStringInfoChar(&out, ',');
		escape_json(&out, fz->errors[i]);
	}
	appendStringInfoString(&out, "]}");
	MemoryContextDelete(cxt);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}

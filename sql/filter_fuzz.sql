--
-- filter_fuzz: msgq.filter_policy_matches on mutated policies and messages
-- (truncations, flipped characters, inserted JSON fragments, huge numbers,
-- deep nesting up to the size limit, unicode, empty strings, $or bombs).
-- The only errors allowed are InvalidParameter (MQ024) for policies and
-- ParameterValueInvalid (MQ027) for message attributes; nothing may crash
-- or take unbounded time.  The random sequence is fixed (setseed), and only
-- counts that do not depend on it are shown.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
CREATE OR REPLACE FUNCTION msgq_test.filter_set_check(policies text[], scopes text[],
													 message_attributes jsonb, body text)
RETURNS boolean[] AS 'msgq', 'msgq_filter_set_check' LANGUAGE C;

SELECT setseed(0.1717);

CREATE FUNCTION pg_temp.pick(VARIADIC t text[]) RETURNS text LANGUAGE sql AS $$
	SELECT t[1 + floor(random() * array_length(t, 1))::int]
$$;
CREATE FUNCTION pg_temp.rint(n int) RETURNS int LANGUAGE sql AS $$
	SELECT floor(random() * n)::int
$$;

-- valid policies to start from
CREATE TEMP TABLE seed_policy (p text, body bool);
INSERT INTO seed_policy VALUES
('{"store":["example_corp"],"event":["order_placed","order_cancelled"]}', false),
('{"price":[{"numeric":[">=",100,"<",200.5]}],"flag":[true,false,null]}', false),
('{"s":[{"prefix":"ord-"},{"suffix":".png"},{"equals-ignore-case":"ExAmPle"}]}', false),
('{"s":[{"anything-but":["rugby","tennis"]}],"t":[{"anything-but":{"prefix":"x"}}]}', false),
('{"ip":[{"cidr":"10.0.0.0/24"},{"cidr":"2001:db8::/32"}],"e":[{"exists":false}]}', false),
('{"source":["a"],"$or":[{"m":["CPU"]},{"n":[{"numeric":["=",3.018e2]}]}]}', false),
('{"a":{"b":{"c":["x",1]}},"d.e":[{"exists":true}]}', true),
('{"a":{"$or":[{"b":[1]},{"c":[{"anything-but":5}]}]},"f":[{"prefix":""}]}', true),
('{"ключ":["значение"],"x":[{"numeric":["<",-1e9]}]}', true),
('{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[{"cidr":"::/0"}]}]}]}', true);

-- messages to start from
CREATE TEMP TABLE seed_body (b text);
INSERT INTO seed_body VALUES
('{"a":{"b":{"c":"x"}},"d":{"e":5},"f":"p"}'),
('{"a":[{"b":1},{"c":6}],"source":"a","m":"CPU","ip":"10.0.0.9"}'),
('{"ключ":"значение","x":-2e9,"a.b.c":["x",[1,[true]]]}'),
('{"s":["rugby","golf"],"t":null,"price":150,"n":301.8}');

-- fragments to insert
CREATE FUNCTION pg_temp.fragment() RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.pick('{', '}', '[', ']', '"', ',', ':', '\', 'null', 'true', 'false',
						'1e999', '-1e-999', '-0', '123456789012345678901234567890.5',
						'1000000000.00001', '9e18', '"\u0000"', '"\ud800"', '"\u00e9"',
						'"\uD834\uDD1E"', 'é', '𝄞', '""', '{"":[""]}', '{"$or":[', '{"$or":[]}',
						'{"numeric":[', '{"numeric":[">",1,"<"]}', '{"cidr":"', '{"cidr":"1.2.3.4/99"}',
						'"anything-but"', '{"anything-but":{"prefix":1}}', '{"exists":0}',
						'{"prefix":null}', '[[]]', '{}', '[{}]', '"$or"', '"a":', chr(9), chr(10),
						' ', '0x10', 'NaN', 'Infinity', '+1', '.5', '01', '1.', '1e', '"\x"')
$$;

-- one mutation of text t
CREATE FUNCTION pg_temp.mutate(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	n int := length(t);
	pos int := 1 + pg_temp.rint(greatest(n, 1));
	k int := pg_temp.rint(9);
BEGIN
	CASE k
		WHEN 0 THEN RETURN left(t, pos - 1);											-- truncate
		WHEN 1 THEN RETURN overlay(t placing pg_temp.pick('"', '{', '}', '[', ']', ':', ',',
														  'x', '0', '9', '-', '.', 'e', '\',
														  'é', '$') from pos for 1);	-- flip
		WHEN 2 THEN RETURN left(t, pos - 1) || pg_temp.fragment() || substr(t, pos);	-- insert
		WHEN 3 THEN RETURN substr(t, 1, pos - 1) || substr(t, pos + 1 + pg_temp.rint(5));	-- delete
		WHEN 4 THEN RETURN regexp_replace(t, '[0-9]+(\.[0-9]+)?', pg_temp.pick('1e308', '1e-400',
										  '99999999999.99999', '-1000000000', '1000000000',
										  '0.000005', '123456789012345678901234567890'));	-- numbers
		WHEN 5 THEN RETURN regexp_replace(t, '"[a-z]+"', pg_temp.pick('""', '"é𝄞"', '"\u00e9"',
										  '"$or"', '"a.b"', '"\""')); 						-- strings
		WHEN 6 THEN RETURN left(t, pos - 1) || pg_temp.fragment() || pg_temp.fragment()
						|| substr(t, pos);
		WHEN 7 THEN RETURN t || pg_temp.fragment();
		ELSE RETURN pg_temp.fragment() || t;
	END CASE;
END
$$;

CREATE FUNCTION pg_temp.mutate_n(t text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text := t;
BEGIN
	FOR i IN 0 .. pg_temp.rint(2) LOOP
		r := pg_temp.mutate(r);
	END LOOP;
	RETURN r;
END
$$;

CREATE FUNCTION pg_temp.maybe_mutate(t text) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN random() < 0.2 THEN pg_temp.mutate_n(t) ELSE t END
$$;

-- generated shapes: deep nesting, $or bombs, wide policies, huge texts
CREATE FUNCTION pg_temp.shape() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	k int := pg_temp.rint(10);
	d int;
BEGIN
	CASE k
		WHEN 0 THEN	-- nested objects, up to the size limit
			d := 1 + pg_temp.rint(52000);
			RETURN repeat('{"a":', d) || '["x"]' || repeat('}', d);
		WHEN 1 THEN	-- nested arrays
			d := 1 + pg_temp.rint(130000);
			RETURN '{"a":' || repeat('[', d) || '1' || repeat(']', d) || '}';
		WHEN 2 THEN	-- a chain of $or, each multiplying
			d := 1 + pg_temp.rint(5000);
			RETURN repeat('{"$or":[{"a":[1]},{"b":[1,2]}],"k":', d) || '{"c":[1]}' || repeat('}', d);
		WHEN 3 THEN	-- $or in $or
			d := 1 + pg_temp.rint(900);
			RETURN repeat('{"$or":[{"a":[1,2,3]},', d) || '{"b":[1]}' || repeat(']}', d);
		WHEN 4 THEN	-- a wide $or
			d := 2 + pg_temp.rint(20000);
			RETURN '{"$or":[' || repeat('{"a":[1]},', d - 1) || '{"b":[2]}]}';
		WHEN 5 THEN	-- many values
			d := 1 + pg_temp.rint(40000);
			RETURN '{"a":[' || repeat('"v",', d) || '"w"]}';
		WHEN 6 THEN	-- a long key and value
			d := pg_temp.rint(270000);
			RETURN '{"' || repeat('k', d / 2) || '":["' || repeat('é', d / 4) || '"]}';
		WHEN 7 THEN	-- unterminated nesting
			RETURN repeat('{"a":[', 1 + pg_temp.rint(2000));
		WHEN 8 THEN	-- many keys
			d := 1 + pg_temp.rint(3000);
			RETURN '{' || (SELECT string_agg(format('"k%s":[%s]', i, i), ',')
							 FROM generate_series(1, d) i) || '}';
		ELSE		-- long anything-but lists and numbers
			d := 1 + pg_temp.rint(20000);
			RETURN '{"a":[{"anything-but":[' || repeat('1.5,', d) || '2]}],"b":[{"numeric":[">",'
				|| repeat('9', 1 + pg_temp.rint(40)) || ']}]}';
	END CASE;
END
$$;

CREATE FUNCTION pg_temp.rattr() RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	t text := pg_temp.pick('String', 'String', 'Number', 'Number', 'String.Array', 'String.Array',
						   'Binary', 'Number.x', 'String.y', 'Str', '');
	v text;
BEGIN
	v := CASE
		WHEN t LIKE 'Number%' THEN pg_temp.pick('150', '301.8', '1e3', '-0.000005', '5', '1000000001')
		WHEN t = 'String.Array' THEN pg_temp.pick('["rugby","golf"]', '[1,true,null]', '"CPU"',
												  '[["x"]]', '[]', '150')
		WHEN t = 'Binary' THEN 'AQ=='
		ELSE pg_temp.pick('example_corp', 'ord-1', 'x.png', '10.0.0.9', '2001:db8::1', 'a', 'CPU',
						  'значение', 'EXAMPLE')
	END;
	RETURN jsonb_build_object('DataType', t,
							  CASE WHEN (t = 'Binary') <> (random() < 0.05) THEN 'BinaryValue'
								   ELSE 'StringValue' END,
							  pg_temp.maybe_mutate(v));
END
$$;
CREATE FUNCTION pg_temp.rattrs() RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE pg_temp.rint(12)
		WHEN 0 THEN NULL
		WHEN 1 THEN '{}'::jsonb
		WHEN 2 THEN pg_temp.pick('[1]', '"x"', 'null', '{"a":5}', '{"a":{}}')::jsonb
		ELSE (SELECT jsonb_object_agg(k, v)
				FROM (SELECT pg_temp.pick('store', 'price', 's', 'ip', 'e', 'a', 'm', 'n', 'source',
										  'flag', 'ключ', 't') AS k,
							 pg_temp.rattr() AS v
						FROM generate_series(0, pg_temp.rint(4))) g)
	END
$$;

CREATE TEMP TABLE outcome (kind text, sqlstate text, matched bool);
CREATE FUNCTION pg_temp.try(kind text, policy text, scope text, attrs jsonb, body text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	r bool;
BEGIN
	BEGIN
		r := msgq.filter_policy_matches(policy, scope, attrs, body);
		INSERT INTO outcome VALUES (kind, NULL, r);
	EXCEPTION WHEN OTHERS THEN
		INSERT INTO outcome VALUES (kind, SQLSTATE, NULL);
	END;
	RETURN 1;
END
$$;

-- mutated policies with seed messages
SELECT sum(pg_temp.try('policy', pg_temp.mutate_n(s.p), CASE WHEN s.body THEN 'MessageBody' END,
				   CASE WHEN i % 2 = 0 THEN pg_temp.rattrs()
						ELSE '{"store":{"DataType":"String","StringValue":"example_corp"}}' END,
				   (SELECT b FROM seed_body WHERE i > 0 ORDER BY random() LIMIT 1)))
  FROM seed_policy s, generate_series(1, 400) i;
-- generated shapes
SELECT sum(pg_temp.try('shape', pg_temp.shape(), pg_temp.pick('MessageBody', 'MessageAttributes'),
				   NULL, '{"a":"x"}'))
  FROM generate_series(1, 120) i;
-- valid policies, mutated messages
SELECT sum(pg_temp.try('message', s.p, CASE WHEN s.body THEN 'MessageBody' END,
				   pg_temp.rattrs(),
				   pg_temp.maybe_mutate((SELECT b FROM seed_body WHERE i > 0 ORDER BY random() LIMIT 1))))
  FROM seed_policy s, generate_series(1, 150) i;
-- deep and odd bodies
SELECT sum(pg_temp.try('body', '{"a":["x"],"b":[{"exists":false}]}', 'MessageBody', NULL,
				   CASE pg_temp.rint(4)
					   WHEN 0 THEN '{"a":"x","z":' || repeat('[', pg_temp.rint(200000)) || '}'
					   WHEN 1 THEN repeat('{"a":', 1 + pg_temp.rint(2000)) || '"x"' || repeat('}', 1 + pg_temp.rint(2000))
					   WHEN 2 THEN '{"a":"x","z":"' || repeat('\\', pg_temp.rint(1000)) || '"}'
					   ELSE pg_temp.mutate_n('{"a":"x","b":[1,{"c":[[]]}]}')
				   END))
  FROM generate_series(1, 200) i;

SELECT count(*) >= 5000 AS calls,
	   count(*) FILTER (WHERE sqlstate IS NOT NULL AND sqlstate NOT IN ('MQ024', 'MQ027'))
		   AS errors_other_than_mq024_mq027,
	   count(*) FILTER (WHERE sqlstate = 'MQ024') > 500 AS many_invalid_policies,
	   count(*) FILTER (WHERE sqlstate = 'MQ027') > 50 AS many_invalid_attributes,
	   count(*) FILTER (WHERE matched) > 50 AS some_match,
	   count(*) FILTER (WHERE NOT matched) > 100 AS some_do_not,
	   count(*) FILTER (WHERE kind = 'shape' AND sqlstate IS NULL) > 5 AS some_shapes_valid,
	   count(*) FILTER (WHERE kind = 'body' AND matched) > 20 AS some_odd_bodies_match
  FROM outcome;
-- any other error, to see it
SELECT kind, sqlstate, count(*) FROM outcome
 WHERE sqlstate IS NOT NULL AND sqlstate NOT IN ('MQ024', 'MQ027')
 GROUP BY 1, 2 ORDER BY 1, 2;

-- the set against the one-policy matcher on fuzzed messages: the valid
-- policies that fuzzing produced, matched together
CREATE TEMP TABLE valid_policy AS
SELECT pg_temp.mutate_n(s.p) AS p, s.body FROM seed_policy s, generate_series(1, 60)
UNION ALL SELECT p, body FROM seed_policy;
CREATE FUNCTION pg_temp.valid(p text, body bool) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
	PERFORM msgq.filter_policy_matches(p, CASE WHEN body THEN 'MessageBody' END);
	RETURN true;
EXCEPTION WHEN OTHERS THEN
	RETURN false;
END
$$;
DELETE FROM valid_policy WHERE NOT pg_temp.valid(p, body);
CREATE TEMP TABLE fuzz_msg AS
SELECT i, pg_temp.rattrs() AS attrs,
	   pg_temp.mutate_n((SELECT b FROM seed_body WHERE i > 0 ORDER BY random() LIMIT 1)) AS body
  FROM generate_series(1, 300) i;
CREATE FUNCTION pg_temp.attrs_ok(a jsonb) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN
	PERFORM msgq.filter_policy_matches(NULL, NULL, a);
	RETURN true;
EXCEPTION WHEN OTHERS THEN
	RETURN false;
END
$$;
DELETE FROM fuzz_msg WHERE NOT pg_temp.attrs_ok(attrs);
CREATE TEMP TABLE set_vs_one AS
SELECT m.i, u.o, u.by_set,
	   msgq.filter_policy_matches(v.ps[u.o], v.ss[u.o], m.attrs, m.body) AS alone
  FROM (SELECT array_agg(p ORDER BY p, body) AS ps,
			   array_agg(CASE WHEN body THEN 'MessageBody' END ORDER BY p, body) AS ss
		  FROM valid_policy) v,
	   fuzz_msg m,
	   unnest(msgq_test.filter_set_check(v.ps, v.ss, m.attrs, m.body)) WITH ORDINALITY AS u(by_set, o);
SELECT count(*) > 1000 AS pairs,
	   count(*) FILTER (WHERE alone) > 50 AS some_match,
	   count(*) FILTER (WHERE by_set IS DISTINCT FROM alone) AS disagreements
  FROM set_vs_one;

-- The C mutation fuzzer of the parser and the matchers (src/filter_fuzz.c):
-- 100,000 inputs from a fixed seed, each in a subtransaction; findings are
-- unexpected errors, set/single disagreements, inputs slower than 1 s and
-- memory left behind.  Long runs by hand: test/fuzz/filter.sh.
CREATE FUNCTION msgq_test.filter_fuzz(seed bigint, iterations int, max_input_ms int)
RETURNS jsonb AS 'msgq', 'msgq_filter_fuzz' LANGUAGE C STRICT;
SELECT (r->>'inputs')::int AS inputs,
	   (r->>'compiled')::int > 20000 AS many_compiled,
	   (r->>'rejected')::int > 20000 AS many_rejected,
	   (r->>'matched')::int > 10000 AS many_matched,
	   (r->>'distinct_errors')::int > 20 AS many_error_paths,
	   (r->>'disagreements')::int AS disagreements,
	   (r->>'unexpected')::int AS unexpected,
	   (r->>'slow')::int AS slow,
	   (r->>'leaked_bytes')::bigint < 262144 AS nothing_left_behind,
	   r->>'findings' AS findings
  FROM msgq_test.filter_fuzz(20260, 100000, 1000) r;
SELECT msgq_test.filter_fuzz(1, -1, 10);

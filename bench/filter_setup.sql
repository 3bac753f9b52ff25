-- bench/filter.sh: the scratch cluster's helpers
CREATE EXTENSION msgq;
CREATE SCHEMA bench;
CREATE FUNCTION bench.filter_set_check(policies text[], scopes text[],
									   message_attributes jsonb, body text)
RETURNS boolean[] AS 'msgq', 'msgq_filter_set_check' LANGUAGE C;
CREATE FUNCTION bench.filter_set_bench(policies text[], scopes text[],
									   message_attributes jsonb, body text,
									   messages int, use_set boolean)
RETURNS float8[] AS 'msgq', 'msgq_filter_set_bench' LANGUAGE C;

-- single policies, each with a message it matches and the same policy as a
-- jsonpath over the same message (attributes jsonb, or the body as jsonb)
CREATE TABLE bench.single (id int PRIMARY KEY, policy text, scope text, attrs jsonb,
						   body text, path jsonpath, on_body bool);
INSERT INTO bench.single VALUES
(1, '{"store":["example_corp"]}', NULL,
 '{"store":{"DataType":"String","StringValue":"example_corp"},"event":{"DataType":"String","StringValue":"order_placed"}}',
 NULL,
 '$.store ? (@.DataType == "String" && @.StringValue == "example_corp")', false),
(2, '{"store":["example_corp","other"],"price":[{"numeric":[">",10,"<=",100]}],"type":[{"prefix":"order-"}],"$or":[{"region":["eu-west-1"]},{"priority":[{"exists":true}]}]}', NULL,
 '{"store":{"DataType":"String","StringValue":"example_corp"},"price":{"DataType":"Number","StringValue":"42.5"},"type":{"DataType":"String","StringValue":"order-created"},"region":{"DataType":"String","StringValue":"eu-west-1"},"tags":{"DataType":"String.Array","StringValue":"[\"a\",\"b\"]"}}',
 NULL,
 '$ ? ((@.store.StringValue == "example_corp" || @.store.StringValue == "other") && @.price.DataType starts with "Number" && @.price.StringValue.double() > 10 && @.price.StringValue.double() <= 100 && @.type.StringValue starts with "order-" && (@.region.StringValue == "eu-west-1" || exists(@.priority)))',
 false),
(3, '{"order":{"status":["paid","shipped"],"total":[{"numeric":[">",10,"<=",100]}]},"customer":[{"prefix":"c-"}],"items":{"sku":[{"anything-but":["X-1"]}]},"$or":[{"currency":["EUR"]},{"region":[{"exists":true}]}]}',
 'MessageBody', NULL,
 '{"order":{"id":123456789,"status":"paid","total":42.5},"customer":"c-000123","items":[{"sku":"A-1001","qty":2,"price":12.5},{"sku":"B-2002","qty":1,"price":17.5}],"currency":"EUR"}',
 '$ ? ((@.order.status == "paid" || @.order.status == "shipped") && @.order.total > 10 && @.order.total <= 100 && @.customer starts with "c-" && exists(@.items.sku ? (@ != "X-1")) && (@.currency == "EUR" || exists(@.region)))',
 true);

CREATE FUNCTION bench.rate_fpm(case_id int, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	c bench.single;
	t0 timestamptz;
	hits int := 0;
BEGIN
	SELECT * INTO c FROM bench.single WHERE id = case_id;
	t0 := clock_timestamp();
	FOR i IN 1 .. n LOOP
		IF msgq.filter_policy_matches(c.policy, c.scope, c.attrs, c.body) THEN
			hits := hits + 1;
		END IF;
	END LOOP;
	IF hits <> n THEN
		RAISE 'policy % does not match its message', case_id;
	END IF;
	RETURN n / extract(epoch FROM clock_timestamp() - t0);
END
$$;

CREATE FUNCTION bench.rate_path(case_id int, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	c bench.single;
	t0 timestamptz;
	hits int := 0;
BEGIN
	SELECT * INTO c FROM bench.single WHERE id = case_id;
	t0 := clock_timestamp();
	IF c.on_body THEN
		FOR i IN 1 .. n LOOP
			IF jsonb_path_exists(c.body::jsonb, c.path) THEN
				hits := hits + 1;
			END IF;
		END LOOP;
	ELSE
		FOR i IN 1 .. n LOOP
			IF jsonb_path_exists(c.attrs, c.path) THEN
				hits := hits + 1;
			END IF;
		END LOOP;
	END IF;
	IF hits <> n THEN
		RAISE 'jsonpath % does not match its message', case_id;
	END IF;
	RETURN n / extract(epoch FROM clock_timestamp() - t0);
END
$$;

-- the policy compiled once, each message prepared and matched
CREATE FUNCTION bench.compiled_us(case_id int, n int) RETURNS float8 LANGUAGE sql AS $$
	SELECT (bench.filter_set_bench(ARRAY[policy], ARRAY[scope], attrs, body, n, false))[2]
	  FROM bench.single WHERE id = case_id
$$;

-- n different policies of a kind; the message matches policy k only
CREATE FUNCTION bench.k(n int) RETURNS int LANGUAGE sql AS $$
	SELECT n / 2 - (n / 2) % 5
$$;
CREATE FUNCTION bench.policies(kind text, n int) RETURNS text[] LANGUAGE sql AS $$
	SELECT array_agg(CASE
			WHEN kind = 'exact' OR i % 5 = 0 THEN
				CASE WHEN kind = 'body' THEN format('{"order":{"id":["v%s"]}}', i)
					 ELSE format('{"id":["v%s"]}', i) END
			WHEN i % 5 = 1 THEN format('{"path":[{"prefix":"p%s-"}]}', i)
			WHEN i % 5 = 2 THEN format('{"n":[{"numeric":[">=",%s,"<",%s]}]}', i * 10, i * 10 + 5)
			WHEN i % 5 = 3 THEN format('{"ip":[{"cidr":"10.%s.%s.0/24"}]}', i / 256, i % 256)
			ELSE format('{"name":[{"suffix":"-s%s"}]}', i)
		END ORDER BY i)
	  FROM generate_series(1, n) i
$$;
CREATE FUNCTION bench.scopes(kind text, n int) RETURNS text[] LANGUAGE sql AS $$
	SELECT array_fill(CASE WHEN kind = 'body' THEN 'MessageBody' END::text, ARRAY[n])
$$;
CREATE FUNCTION bench.attrs(kind text, n int) RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE WHEN kind = 'body' THEN NULL ELSE jsonb_build_object(
		'id', jsonb_build_object('DataType', 'String', 'StringValue', 'v' || bench.k(n)),
		'path', jsonb_build_object('DataType', 'String', 'StringValue', 'zz/none'),
		'n', jsonb_build_object('DataType', 'Number', 'StringValue', '-1'),
		'ip', jsonb_build_object('DataType', 'String', 'StringValue', '192.168.0.1'),
		'name', jsonb_build_object('DataType', 'String', 'StringValue', 'none'))
	END
$$;
CREATE FUNCTION bench.body(kind text, n int) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN kind = 'body' THEN jsonb_build_object(
		'order', jsonb_build_object('id', 'v' || bench.k(n), 'total', 42.5),
		'path', 'zz/none', 'n', -1, 'ip', '192.168.0.1', 'name', 'none')::text
	END
$$;

CREATE FUNCTION bench.set_run(kind text, n int, messages int, use_set bool)
RETURNS float8[] LANGUAGE sql AS $$
	SELECT bench.filter_set_bench(bench.policies(kind, n), bench.scopes(kind, n),
								  bench.attrs(kind, n), bench.body(kind, n), messages, use_set)
$$;

-- the set's answer is policy k only, as filter_policy_matches says
CREATE FUNCTION bench.check_set(kind text, n int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	p text[] := bench.policies(kind, n);
	s text[] := bench.scopes(kind, n);
	r bool[];
BEGIN
	r := bench.filter_set_check(p, s, bench.attrs(kind, n), bench.body(kind, n));
	FOR i IN 1 .. n LOOP
		IF r[i] <> (i = bench.k(n)) OR
		   (i % greatest(n / 50, 1) = 0 AND
			r[i] <> msgq.filter_policy_matches(p[i], s[i], bench.attrs(kind, n), bench.body(kind, n))) THEN
			RAISE 'set answer for % policy % of % is wrong', kind, i, n;
		END IF;
	END LOOP;
END
$$;

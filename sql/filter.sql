--
-- filter: SNS filter policies (src/filter.c) through
-- msgq.filter_policy_matches: every operator in both scopes, String.Array
-- and body arrays, nested and dotted keys, missing keys, exists:false on a
-- message without attributes, no type coercion, Binary attributes ignored,
-- numbers at five decimal places and within +-10^9, CIDR blocks, the
-- limits (5 keys, complexity 150, 256 KB), every validation error with its
-- text and SQLSTATE, malformed message attributes; then the set index
-- (msgq_filter_set_check) against the one-policy matcher over generated
-- policies and messages.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS msgq;
CREATE SCHEMA IF NOT EXISTS msgq_test;
RESET client_min_messages;
GRANT USAGE ON SCHEMA msgq_test TO PUBLIC;
CREATE OR REPLACE FUNCTION msgq_test.err(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE sql;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
							det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || CASE WHEN length(det) > 0 THEN ' | ' || det ELSE '' END;
END
$$;
-- the set matcher's test entry point (its declaration is not part of the
-- extension's script)
CREATE OR REPLACE FUNCTION msgq_test.filter_set_check(policies text[], scopes text[],
													 message_attributes jsonb, body text)
RETURNS boolean[] AS 'msgq', 'msgq_filter_set_check' LANGUAGE C;

-- attributes in the send_message shape from (name, DataType, value)
-- triples; Binary values go to BinaryValue
CREATE FUNCTION pg_temp.a(VARIADIC t text[]) RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_object_agg(t[i],
			jsonb_build_object('DataType', t[i + 1],
							   CASE WHEN t[i + 1] LIKE 'Binary%' THEN 'BinaryValue'
									ELSE 'StringValue' END, t[i + 2])), '{}')
	  FROM generate_series(1, coalesce(array_length(t, 1), 0), 3) i
$$;
-- a JSON array of n strings "1", "2", ...
CREATE FUNCTION pg_temp.vals(n int) RETURNS text LANGUAGE sql AS $$
	SELECT json_agg(i::text)::text FROM generate_series(1, n) i
$$;

CREATE TABLE msgq_test.fcase (
	id text PRIMARY KEY,
	policy text,
	scope text,
	attrs jsonb,
	body text,
	expect boolean);

--
-- MessageAttributes scope: exact values, no coercion, String.Array, Binary
--
INSERT INTO msgq_test.fcase VALUES
('a01 string equal', '{"store":["example_corp"]}', NULL, pg_temp.a('store','String','example_corp'), NULL, true),
('a02 string differs', '{"store":["example_corp"]}', NULL, pg_temp.a('store','String','example_corp2'), NULL, false),
('a03 string case-exact', '{"store":["Example_corp"]}', NULL, pg_temp.a('store','String','example_corp'), NULL, false),
('a04 values ORed', '{"store":["a","b","c"]}', 'MessageAttributes', pg_temp.a('store','String','b'), NULL, true),
('a05 keys ANDed, both', '{"store":["a"],"event":["x"]}', NULL, pg_temp.a('store','String','a','event','String','x'), NULL, true),
('a06 keys ANDed, one missing', '{"store":["a"],"event":["x"]}', NULL, pg_temp.a('store','String','a'), NULL, false),
('a07 keys ANDed, one wrong', '{"store":["a"],"event":["x"]}', NULL, pg_temp.a('store','String','a','event','String','y'), NULL, false),
('a08 key absent', '{"store":["a"]}', NULL, pg_temp.a('other','String','a'), NULL, false),
('a09 extra attributes ignored', '{"store":["a"]}', NULL, pg_temp.a('store','String','a','x','String','y'), NULL, true),
('a10 number = Number', '{"price":[100]}', NULL, pg_temp.a('price','Number','100'), NULL, true),
('a11 number = Number 100.0', '{"price":[100]}', NULL, pg_temp.a('price','Number','100.0'), NULL, true),
('a12 301.5 = Number 3.015e2', '{"price":[301.5]}', NULL, pg_temp.a('price','Number','3.015e2'), NULL, true),
('a13 number vs String "100"', '{"price":[100]}', NULL, pg_temp.a('price','String','100'), NULL, false),
('a14 string "100" vs Number', '{"price":["100"]}', NULL, pg_temp.a('price','Number','100'), NULL, false),
('a15 string "100" vs String', '{"price":["100"]}', NULL, pg_temp.a('price','String','100'), NULL, true),
('a16 true vs String "true"', '{"flag":[true]}', NULL, pg_temp.a('flag','String','true'), NULL, false),
('a17 "true" vs String "true"', '{"flag":["true"]}', NULL, pg_temp.a('flag','String','true'), NULL, true),
('a18 Number.label is a number', '{"price":[5]}', NULL, pg_temp.a('price','Number.float','5.00'), NULL, true),
('a19 String.label is a string', '{"s":["x"]}', NULL, pg_temp.a('s','String.custom','x'), NULL, true),
('a20 String.Array element', '{"sports":["rugby"]}', NULL, pg_temp.a('sports','String.Array','["rugby","tennis"]'), NULL, true),
('a21 String.Array no element', '{"sports":["golf"]}', NULL, pg_temp.a('sports','String.Array','["rugby","tennis"]'), NULL, false),
('a22 String.Array number element', '{"n":[5]}', NULL, pg_temp.a('n','String.Array','[1, 5.0]'), NULL, true),
('a23 String.Array number vs "5"', '{"n":["5"]}', NULL, pg_temp.a('n','String.Array','[1, 5]'), NULL, false),
('a24 String.Array true element', '{"f":[true]}', NULL, pg_temp.a('f','String.Array','[false, true]'), NULL, true),
('a25 String.Array "true" vs true', '{"f":["true"]}', NULL, pg_temp.a('f','String.Array','[true]'), NULL, false),
('a26 String.Array null element', '{"x":[null]}', NULL, pg_temp.a('x','String.Array','[null]'), NULL, true),
('a27 String "null" is no null', '{"x":[null]}', NULL, pg_temp.a('x','String','null'), NULL, false),
('a28 String.Array scalar text', '{"f":[true]}', NULL, pg_temp.a('f','String.Array','true'), NULL, true),
('a29 String.Array scalar string', '{"s":["x"]}', NULL, pg_temp.a('s','String.Array','"x"'), NULL, true),
('a30 String looking like array', '{"sports":["rugby"]}', NULL, pg_temp.a('sports','String','["rugby"]'), NULL, false),
('a31 String with array text', '{"sports":["[\"rugby\"]"]}', NULL, pg_temp.a('sports','String','["rugby"]'), NULL, true),
('a32 String.Array unparseable', '{"sports":["rugby"]}', NULL, pg_temp.a('sports','String.Array','["rugby"'), NULL, false),
('a33 String.Array nested ignored', '{"sports":["rugby"]}', NULL, pg_temp.a('sports','String.Array','[["rugby"],{"a":"rugby"}]'), NULL, false),
('a34 Binary is no value', '{"b":[{"exists":true}]}', NULL, pg_temp.a('b','Binary','AQID'), NULL, false),
('a35 Binary is as if absent', '{"b":[{"exists":false}]}', NULL, pg_temp.a('b','Binary','AQID'), NULL, true),
('a36 Binary value not compared', '{"b":["AQID"]}', NULL, pg_temp.a('b','Binary','AQID'), NULL, false),
('a37 dotted attribute name', '{"a.b":["x"]}', NULL, pg_temp.a('a.b','String','x'), NULL, true),
('a38 unicode', '{"ключ":["значение"]}', NULL, pg_temp.a('ключ','String','значение'), NULL, true),
('a39 attributes scope ignores body', '{"a":["x"]}', NULL, pg_temp.a('b','String','y'), '{"a":"x"}', false);

--
-- prefix, suffix, equals-ignore-case
--
INSERT INTO msgq_test.fcase VALUES
('b01 prefix', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String','ord-17'), NULL, true),
('b02 prefix equal to value', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String','ord-'), NULL, true),
('b03 prefix longer than value', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String','ord'), NULL, false),
('b04 prefix not at start', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String','xord-1'), NULL, false),
('b05 prefix is case-exact', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String','ORD-1'), NULL, false),
('b06 prefix on a Number', '{"n":[{"prefix":"1"}]}', NULL, pg_temp.a('n','Number','10'), NULL, false),
('b07 prefix on String.Array', '{"s":[{"prefix":"ord-"}]}', NULL, pg_temp.a('s','String.Array','["x","ord-2"]'), NULL, true),
('b08 empty prefix, any string', '{"s":[{"prefix":""}]}', NULL, pg_temp.a('s','String','x'), NULL, true),
('b09 suffix', '{"f":[{"suffix":".png"}]}', NULL, pg_temp.a('f','String','a.png'), NULL, true),
('b10 suffix is case-exact', '{"f":[{"suffix":".png"}]}', NULL, pg_temp.a('f','String','a.PNG'), NULL, false),
('b11 suffix not at end', '{"f":[{"suffix":".png"}]}', NULL, pg_temp.a('f','String','a.png.x'), NULL, false),
('b12 equals-ignore-case', '{"s":[{"equals-ignore-case":"ExAmPle"}]}', NULL, pg_temp.a('s','String','EXAMPLE'), NULL, true),
('b13 equals-ignore-case differs', '{"s":[{"equals-ignore-case":"ExAmPle"}]}', NULL, pg_temp.a('s','String','exampl'), NULL, false),
('b14 equals-ignore-case no prefix', '{"s":[{"equals-ignore-case":"ab"}]}', NULL, pg_temp.a('s','String','abc'), NULL, false),
('b15 mixed conditions ORed', '{"s":["x",{"prefix":"a"},{"suffix":"z"}]}', NULL, pg_temp.a('s','String','quiz'), NULL, true);

--
-- anything-but
--
INSERT INTO msgq_test.fcase VALUES
('c01 anything-but other value', '{"s":[{"anything-but":"rugby"}]}', NULL, pg_temp.a('s','String','tennis'), NULL, true),
('c02 anything-but excluded', '{"s":[{"anything-but":"rugby"}]}', NULL, pg_temp.a('s','String','rugby'), NULL, false),
('c03 anything-but absent key', '{"s":[{"anything-but":"rugby"}]}', NULL, pg_temp.a('t','String','x'), NULL, false),
('c04 anything-but or absent', '{"s":[{"anything-but":"rugby"},{"exists":false}]}', NULL, pg_temp.a('t','String','x'), NULL, true),
('c05 anything-but list, other', '{"s":[{"anything-but":["rugby","tennis"]}]}', NULL, pg_temp.a('s','String','golf'), NULL, true),
('c06 anything-but list, excluded', '{"s":[{"anything-but":["rugby","tennis"]}]}', NULL, pg_temp.a('s','String','tennis'), NULL, false),
('c07 array, one not excluded', '{"s":[{"anything-but":["rugby","tennis"]}]}', NULL, pg_temp.a('s','String.Array','["rugby","baseball"]'), NULL, true),
('c08 array, all excluded', '{"s":[{"anything-but":["rugby","tennis"]}]}', NULL, pg_temp.a('s','String.Array','["rugby","tennis"]'), NULL, false),
('c09 "100" excludes the string', '{"n":[{"anything-but":["100"]}]}', NULL, pg_temp.a('n','String','100'), NULL, false),
('c10 "100" keeps the number', '{"n":[{"anything-but":["100"]}]}', NULL, pg_temp.a('n','Number','100'), NULL, true),
('c11 100 excludes 100.0', '{"n":[{"anything-but":100}]}', NULL, pg_temp.a('n','Number','100.0'), NULL, false),
('c12 100 keeps 101', '{"n":[{"anything-but":100}]}', NULL, pg_temp.a('n','Number','101'), NULL, true),
('c13 100 keeps the string', '{"n":[{"anything-but":[100, 200]}]}', NULL, pg_temp.a('n','String','100'), NULL, true),
('c14 anything-but true', '{"f":[{"anything-but":true}]}', NULL, pg_temp.a('f','String.Array','true'), NULL, false),
('c15 anything-but true, false', '{"f":[{"anything-but":true}]}', NULL, pg_temp.a('f','String.Array','false'), NULL, true),
('c16 anything-but prefix, excluded', '{"s":[{"anything-but":{"prefix":"order-"}}]}', NULL, pg_temp.a('s','String','order-1'), NULL, false),
('c17 anything-but prefix, other', '{"s":[{"anything-but":{"prefix":"order-"}}]}', NULL, pg_temp.a('s','String','shipment'), NULL, true),
('c18 anything-but prefix, Number', '{"s":[{"anything-but":{"prefix":"order-"}}]}', NULL, pg_temp.a('s','Number','5'), NULL, false),
('c19 anything-but prefix, absent', '{"s":[{"anything-but":{"prefix":"order-"}}]}', NULL, pg_temp.a('t','String','x'), NULL, false),
('c20 anything-but false, false', '{"f":[{"anything-but":false}]}', 'MessageBody', NULL, '{"f":false}', false),
('c21 anything-but false, true', '{"f":[{"anything-but":false}]}', 'MessageBody', NULL, '{"f":true}', true),
('c22 anything-but null, null', '{"f":[{"anything-but":null}]}', 'MessageBody', NULL, '{"f":null}', false),
('c23 anything-but null, a number', '{"f":[{"anything-but":null}]}', 'MessageBody', NULL, '{"f":1}', true),
('c24 anything-but true, false, null: a string', '{"f":[{"anything-but":[true,false,null]}]}', 'MessageBody', NULL, '{"f":"x"}', true),
('c25 anything-but true, false, null: false', '{"f":[{"anything-but":[true,false,null]}]}', 'MessageBody', NULL, '{"f":false}', false);

--
-- numeric: 5 decimal places, ranges, +-10^9
--
INSERT INTO msgq_test.fcase VALUES
('d01 = 100, Number 100.0', '{"n":[{"numeric":["=",100]}]}', NULL, pg_temp.a('n','Number','100.0'), NULL, true),
('d02 = 100, 1e2', '{"n":[{"numeric":["=",100]}]}', NULL, pg_temp.a('n','Number','1e2'), NULL, true),
('d03 = 100.123456789 vs 100.1234567', '{"n":[{"numeric":["=",100.123456789]}]}', NULL, pg_temp.a('n','Number','100.1234567'), NULL, true),
('d04 exact 100.123456789 vs 100.1234567', '{"n":[100.123456789]}', NULL, pg_temp.a('n','Number','100.1234567'), NULL, true),
('d05 1.5 vs 1.50002', '{"n":[{"numeric":["=",1.5]}]}', NULL, pg_temp.a('n','Number','1.50002'), NULL, false),
('d06 1.5 vs 1.50001', '{"n":[1.5]}', NULL, pg_temp.a('n','Number','1.50001'), NULL, false),
('d07 1.5 vs 1.500004 (rounds down)', '{"n":[1.5]}', NULL, pg_temp.a('n','Number','1.500004'), NULL, true),
('d08 1.5 vs 1.499995 (rounds up)', '{"n":[1.5]}', NULL, pg_temp.a('n','Number','1.499995'), NULL, true),
('d09 < 0, -1', '{"n":[{"numeric":["<",0]}]}', NULL, pg_temp.a('n','Number','-1'), NULL, true),
('d10 < 0, 0', '{"n":[{"numeric":["<",0]}]}', NULL, pg_temp.a('n','Number','0'), NULL, false),
('d11 <= 0, 0', '{"n":[{"numeric":["<=",0]}]}', NULL, pg_temp.a('n','Number','-0.0'), NULL, true),
('d12 > 0, 0', '{"n":[{"numeric":[">",0]}]}', NULL, pg_temp.a('n','Number','0'), NULL, false),
('d13 > 0, 0.00001', '{"n":[{"numeric":[">",0]}]}', NULL, pg_temp.a('n','Number','0.00001'), NULL, true),
('d14 > 0, 0.000001 (is 0)', '{"n":[{"numeric":[">",0]}]}', NULL, pg_temp.a('n','Number','0.000001'), NULL, false),
('d15 >= 0, 0', '{"n":[{"numeric":[">=",0]}]}', NULL, pg_temp.a('n','Number','0'), NULL, true),
('d16 [>=0,<100] 0', '{"n":[{"numeric":[">=",0,"<",100]}]}', NULL, pg_temp.a('n','Number','0'), NULL, true),
('d17 [>=0,<100] 99.99999', '{"n":[{"numeric":[">=",0,"<",100]}]}', NULL, pg_temp.a('n','Number','99.99999'), NULL, true),
('d18 [>=0,<100] 100', '{"n":[{"numeric":[">=",0,"<",100]}]}', NULL, pg_temp.a('n','Number','100'), NULL, false),
('d19 [>=0,<100] -0.00001', '{"n":[{"numeric":[">=",0,"<",100]}]}', NULL, pg_temp.a('n','Number','-0.00001'), NULL, false),
('d20 [>0,<=100] 100', '{"n":[{"numeric":[">",0,"<=",100]}]}', NULL, pg_temp.a('n','Number','100'), NULL, true),
('d21 [>0,<=100] 0', '{"n":[{"numeric":[">",0,"<=",100]}]}', NULL, pg_temp.a('n','Number','0'), NULL, false),
('d22 numeric on a String', '{"n":[{"numeric":[">",0]}]}', NULL, pg_temp.a('n','String','5'), NULL, false),
('d23 numeric on String.Array', '{"n":[{"numeric":[">",10]}]}', NULL, pg_temp.a('n','String.Array','[1, "50", 20]'), NULL, true),
('d24 numeric absent', '{"n":[{"numeric":[">",0]}]}', NULL, pg_temp.a('m','Number','5'), NULL, false),
('d25 <= 1e9, Number 1e9', '{"n":[{"numeric":["<=",1000000000]}]}', NULL, pg_temp.a('n','Number','1000000000'), NULL, true),
('d26 = 1e9 exact', '{"n":[1e9]}', NULL, pg_temp.a('n','Number','1000000000.000'), NULL, true),
('d27 = -1e9 exact', '{"n":[-1000000000]}', NULL, pg_temp.a('n','Number','-1e9'), NULL, true),
('d28 <= 1e9, beyond', '{"n":[{"numeric":["<=",1000000000]}]}', NULL, pg_temp.a('n','Number','1000000000.00001'), NULL, false),
('d29 > 1e9-1, beyond', '{"n":[{"numeric":[">",999999999]}]}', NULL, pg_temp.a('n','Number','5e12'), NULL, true),
('d30 < -1e9+1, below', '{"n":[{"numeric":["<",-999999999]}]}', NULL, pg_temp.a('n','Number','-2000000000'), NULL, true),
('d31 = 1e9, beyond', '{"n":[1000000000]}', NULL, pg_temp.a('n','Number','1000000000.000004'), NULL, false),
('d32 Number +5 and .5e1', '{"n":[5]}', NULL, pg_temp.a('n','Number','+.5e1'), NULL, true);

--
-- exists, and messages without attributes
--
INSERT INTO msgq_test.fcase VALUES
('e01 exists:true, present', '{"s":[{"exists":true}]}', NULL, pg_temp.a('s','String','x'), NULL, true),
('e02 exists:true, absent', '{"s":[{"exists":true}]}', NULL, pg_temp.a('t','String','x'), NULL, false),
('e03 exists:false, absent', '{"s":[{"exists":false}]}', NULL, pg_temp.a('t','String','x'), NULL, true),
('e04 exists:false, present', '{"s":[{"exists":false}]}', NULL, pg_temp.a('s','String','x'), NULL, false),
('e05 exists:false, no attributes', '{"s":[{"exists":false}]}', NULL, NULL, NULL, false),
('e06 exists:false, {} attributes', '{"s":[{"exists":false}]}', NULL, '{}', NULL, false),
('e07 anything-but, no attributes', '{"s":[{"anything-but":"x"}]}', NULL, NULL, NULL, false),
('e08 {} policy, no attributes', '{}', NULL, NULL, NULL, true),
('e09 no policy', NULL, NULL, NULL, NULL, true),
('e10 empty policy text', '', NULL, NULL, NULL, true),
('e11 exists:true, String.Array []', '{"s":[{"exists":true}]}', NULL, pg_temp.a('s','String.Array','[]'), NULL, false),
('e12 exists:false, String.Array []', '{"s":[{"exists":false}]}', NULL, pg_temp.a('s','String.Array','[]'), NULL, true),
('e13 exists:true, String.Array [null]', '{"s":[{"exists":true}]}', NULL, pg_temp.a('s','String.Array','[null]'), NULL, false),
('e14 exists:true, Number', '{"n":[{"exists":true}]}', NULL, pg_temp.a('n','Number','0'), NULL, true),
('e15 exists:false and exact, ANDed', '{"s":[{"exists":false}],"t":["x"]}', NULL, pg_temp.a('t','String','x'), NULL, true);

--
-- cidr
--
INSERT INTO msgq_test.fcase VALUES
('f01 v4 /24 inside', '{"ip":[{"cidr":"10.0.0.0/24"}]}', NULL, pg_temp.a('ip','String','10.0.0.255'), NULL, true),
('f02 v4 /24 outside', '{"ip":[{"cidr":"10.0.0.0/24"}]}', NULL, pg_temp.a('ip','String','10.0.1.0'), NULL, false),
('f03 v4 /9 last inside', '{"ip":[{"cidr":"10.0.0.0/9"}]}', NULL, pg_temp.a('ip','String','10.127.255.255'), NULL, true),
('f04 v4 /9 first outside', '{"ip":[{"cidr":"10.0.0.0/9"}]}', NULL, pg_temp.a('ip','String','10.128.0.0'), NULL, false),
('f05 v4 /32 the host', '{"ip":[{"cidr":"192.168.1.1/32"}]}', NULL, pg_temp.a('ip','String','192.168.1.1'), NULL, true),
('f06 v4 /32 another host', '{"ip":[{"cidr":"192.168.1.1/32"}]}', NULL, pg_temp.a('ip','String','192.168.1.2'), NULL, false),
('f07 v4 /0 any v4', '{"ip":[{"cidr":"0.0.0.0/0"}]}', NULL, pg_temp.a('ip','String','255.255.255.255'), NULL, true),
('f08 v4 /0 not v6', '{"ip":[{"cidr":"0.0.0.0/0"}]}', NULL, pg_temp.a('ip','String','::1'), NULL, false),
('f09 v4 host bits set in policy', '{"ip":[{"cidr":"10.0.0.7/24"}]}', NULL, pg_temp.a('ip','String','10.0.0.200'), NULL, true),
('f10 v4 value with mask', '{"ip":[{"cidr":"10.0.0.0/24"}]}', NULL, pg_temp.a('ip','String','10.0.0.1/32'), NULL, false),
('f11 v4 value not an address', '{"ip":[{"cidr":"10.0.0.0/24"}]}', NULL, pg_temp.a('ip','String','10.0.0.256'), NULL, false),
('f12 v6 compressed', '{"ip":[{"cidr":"2001:db8::/32"}]}', NULL, pg_temp.a('ip','String','2001:db8:1::1'), NULL, true),
('f13 v6 uncompressed', '{"ip":[{"cidr":"2001:db8::/32"}]}', NULL, pg_temp.a('ip','String','2001:0DB8:0000:0000:0000:0000:0000:0001'), NULL, true),
('f14 v6 outside', '{"ip":[{"cidr":"2001:db8::/32"}]}', NULL, pg_temp.a('ip','String','2001:db9::1'), NULL, false),
('f15 v6 not v4', '{"ip":[{"cidr":"2001:db8::/32"}]}', NULL, pg_temp.a('ip','String','10.0.0.1'), NULL, false),
('f16 v6 /10 inside', '{"ip":[{"cidr":"fe80::/10"}]}', NULL, pg_temp.a('ip','String','febf:ffff::1'), NULL, true),
('f17 v6 /10 outside', '{"ip":[{"cidr":"fe80::/10"}]}', NULL, pg_temp.a('ip','String','fec0::1'), NULL, false),
('f18 v6 /128', '{"ip":[{"cidr":"::1/128"}]}', NULL, pg_temp.a('ip','String','0:0:0:0:0:0:0:1'), NULL, true),
('f19 v6 ::/0', '{"ip":[{"cidr":"::/0"}]}', NULL, pg_temp.a('ip','String','ffff::'), NULL, true),
('f20 v6 with v4 tail', '{"ip":[{"cidr":"::ffff:10.0.0.0/120"}]}', NULL, pg_temp.a('ip','String','::ffff:10.0.0.9'), NULL, true),
('f21 cidr on a Number', '{"ip":[{"cidr":"0.0.0.0/0"}]}', NULL, pg_temp.a('ip','Number','1'), NULL, false),
('f22 cidr in a body', '{"ip":[{"cidr":"10.0.0.0/8"}]}', 'MessageBody', NULL, '{"ip":["192.168.0.1","10.1.1.1"]}', true);

--
-- MessageBody scope: JSON objects only, nesting, dotted keys, arrays
--
INSERT INTO msgq_test.fcase VALUES
('g01 body key', '{"a":["x"]}', 'MessageBody', NULL, '{"a":"x"}', true),
('g02 body not JSON', '{"a":["x"]}', 'MessageBody', NULL, 'a: x', false),
('g03 body an array', '{"a":["x"]}', 'MessageBody', NULL, '[{"a":"x"}]', false),
('g04 body a string', '{"a":[{"exists":false}]}', 'MessageBody', NULL, '"x"', false),
('g05 no body, exists:false', '{"a":[{"exists":false}]}', 'MessageBody', NULL, NULL, false),
('g06 body {}, exists:false', '{"a":[{"exists":false}]}', 'MessageBody', NULL, '{}', true),
('g07 {} policy, body not JSON', '{}', 'MessageBody', NULL, 'x', true),
('g08 body scope ignores attributes', '{"a":["x"]}', 'MessageBody', pg_temp.a('a','String','x'), '{"b":1}', false),
('g09 nested policy, nested body', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":{"b":"x"}}', true),
('g10 nested policy, dotted body', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a.b":"x"}', true),
('g11 dotted policy, nested body', '{"a.b":["x"]}', 'MessageBody', NULL, '{"a":{"b":"x"}}', true),
('g12 a.b.c vs a{b{c}}', '{"a.b.c":[1]}', 'MessageBody', NULL, '{"a":{"b":{"c":1}}}', true),
('g13 a.b.c vs a{b.c}', '{"a.b.c":[1]}', 'MessageBody', NULL, '{"a":{"b.c":1}}', true),
('g14 a.b.c vs a.b{c}', '{"a.b.c":[1]}', 'MessageBody', NULL, '{"a.b":{"c":1}}', true),
('g15 a.b.c vs a.b.c', '{"a.b.c":[1]}', 'MessageBody', NULL, '{"a.b.c":1}', true),
('g16 a{b.c} vs a{b{c}}', '{"a":{"b.c":[1]}}', 'MessageBody', NULL, '{"a":{"b":{"c":1}}}', true),
('g17 a.b vs a.bc', '{"a.b":[1]}', 'MessageBody', NULL, '{"a":{"bc":1}}', false),
('g18 object is not a value', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":{"b":{"c":"x"}}}', false),
('g19 object-valued key is absent', '{"a":[{"exists":false}]}', 'MessageBody', NULL, '{"a":{"b":1}}', true),
('g20 deeper key on a scalar', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":"x"}', false),
('g21 array of objects', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":[{"b":"y"},{"b":"x"}]}', true),
('g22 array of arrays of objects', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":[[{"b":"x"}]]}', true),
('g23 leaf array of arrays', '{"a":{"b":["x"]}}', 'MessageBody', NULL, '{"a":{"b":[["y"],["x"]]}}', true),
('g24 empty array, exists:true', '{"a":[{"exists":true}]}', 'MessageBody', NULL, '{"a":[]}', false),
('g25 empty array, exists:false', '{"a":[{"exists":false}]}', 'MessageBody', NULL, '{"a":[]}', true),
('g26 null, exists:true', '{"a":[{"exists":true}]}', 'MessageBody', NULL, '{"a":null}', false),
('g27 null = null', '{"a":[null]}', 'MessageBody', NULL, '{"a":null}', true),
('g28 "" exists', '{"a":[{"exists":true}]}', 'MessageBody', NULL, '{"a":""}', true),
('g29 100 vs "100"', '{"n":[100]}', 'MessageBody', NULL, '{"n":"100"}', false),
('g30 100 vs 100.0', '{"n":[100]}', 'MessageBody', NULL, '{"n":100.0}', true),
('g31 100 vs 1E2', '{"n":[100]}', 'MessageBody', NULL, '{"n":1E2}', true),
('g32 "100" vs 100', '{"n":["100"]}', 'MessageBody', NULL, '{"n":100}', false),
('g33 false vs "false"', '{"b":[false]}', 'MessageBody', NULL, '{"b":"false"}', false),
('g34 false vs false', '{"b":[false]}', 'MessageBody', NULL, '{"b":false}', true),
('g35 numeric range in array', '{"n":[{"numeric":[">",0,"<",10]}]}', 'MessageBody', NULL, '{"n":[-5,"5",50,5]}', true),
('g36 anything-but, body array', '{"s":[{"anything-but":["rugby","tennis"]}]}', 'MessageBody', NULL, '{"s":["rugby","baseball"]}', true),
('g37 anything-but, all excluded', '{"s":[{"anything-but":["rugby","tennis"]}]}', 'MessageBody', NULL, '{"s":["rugby","tennis"]}', false),
('g38 unicode', '{"ключ":["значение"]}', 'MessageBody', NULL, '{"ключ":"значение"}', true),
('g39 unicode escapes in the body', '{"ключ":["значение"]}', 'MessageBody', NULL, '{"\u043a\u043b\u044e\u0447":"\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435"}', true),
('g40 nested keys ANDed', '{"a":{"b":["x"],"c":["y"]}}', 'MessageBody', NULL, '{"a":{"b":"x","c":"z"}}', false),
('g41 nested and top ANDed', '{"a":{"b":["x"]},"d":[1]}', 'MessageBody', NULL, '{"a":{"b":"x"},"d":1}', true),
('g42 keys of array elements combine', '{"a":{"b":["x"],"c":["y"]}}', 'MessageBody', NULL, '{"a":[{"b":"x"},{"c":"y"}]}', true),
('g43 body 1000 levels deep', '{"a":["x"]}', 'MessageBody', NULL, '{"a":"x","z":' || repeat('[', 999) || repeat(']', 999) || '}', true),
('g44 body over 1000 levels', '{"a":["x"]}', 'MessageBody', NULL, '{"a":"x","z":' || repeat('[', 1000) || repeat(']', 1000) || '}', false);

--
-- $or
--
INSERT INTO msgq_test.fcase VALUES
('h01 $or first branch', '{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}', NULL,
	pg_temp.a('source','String','aws.cloudwatch','metricName','String','CPUUtilization'), NULL, true),
('h02 $or second branch', '{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}', NULL,
	pg_temp.a('source','String','aws.cloudwatch','namespace','String','AWS/EC2'), NULL, true),
('h03 $or no branch', '{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}', NULL,
	pg_temp.a('source','String','aws.cloudwatch'), NULL, false),
('h04 $or sibling fails', '{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}]}', NULL,
	pg_temp.a('metricName','String','CPUUtilization'), NULL, false),
('h05 $or nested in body', '{"a":{"$or":[{"b":[1]},{"c":[2]}]}}', 'MessageBody', NULL, '{"a":{"c":2}}', true),
('h06 $or nested in body, none', '{"a":{"$or":[{"b":[1]},{"c":[2]}]}}', 'MessageBody', NULL, '{"a":{"d":2},"c":2}', false),
('h07 $or in $or', '{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}', NULL, pg_temp.a('c','Number','3'), NULL, true),
('h08 $or in $or, none', '{"$or":[{"a":[1]},{"$or":[{"b":[2]},{"c":[3]}]}]}', NULL, pg_temp.a('c','Number','4'), NULL, false),
('h09 $or branch with two keys', '{"$or":[{"a":[1],"b":[1]},{"c":[1]}]}', NULL, pg_temp.a('a','Number','1'), NULL, false),
('h10 two $or ANDed', '{"$or":[{"a":[1]},{"b":[1]}],"c":{"$or":[{"d":[1]},{"e":[1]}]}}', 'MessageBody', NULL, '{"b":1,"c":{"e":1}}', true),
('h11 $or, exists:false branch', '{"$or":[{"a":["x"]},{"a":[{"exists":false}]}]}', NULL, pg_temp.a('b','String','x'), NULL, true);

SELECT id, expect, msgq.filter_policy_matches(policy, scope, attrs, body) AS got
  FROM msgq_test.fcase ORDER BY id;
SELECT count(*) AS cases,
	   count(*) FILTER (WHERE msgq.filter_policy_matches(policy, scope, attrs, body)
						IS DISTINCT FROM expect) AS wrong
  FROM msgq_test.fcase;

--
-- limits: keys, complexity, size, depth (valid: the policy is accepted and
-- evaluated; invalid: the error)
--
CREATE TABLE msgq_test.flimit (id text PRIMARY KEY, policy text, scope text);
INSERT INTO msgq_test.flimit VALUES
('k1 5 attribute keys', '{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1]}', NULL),
('k2 6 attribute keys', '{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":[1]}', NULL),
('k3 6 attribute keys through $or', '{"$or":[{"a":[1],"b":[1],"c":[1]},{"d":[1],"e":[1],"f":[1]}]}', NULL),
('k4 5 names used twice in $or', '{"$or":[{"a":[1],"b":[1],"c":[1]},{"a":[2],"d":[1],"e":[1]}]}', NULL),
('k5 5 top-level body keys', '{"a":[1],"b":[1],"c":[1],"d":[1],"e":{"f":[1]}}', 'MessageBody'),
('k6 6 top-level body keys', '{"a":[1],"b":[1],"c":[1],"d":[1],"e":[1],"f":{"g":[1]}}', 'MessageBody'),
('k7 nested body keys do not count', '{"a":{"b":[1],"c":[1],"d":[1],"e":[1],"f":[1],"g":[1]}}', 'MessageBody'),
('c1 150 values', '{"a":' || pg_temp.vals(150) || '}', NULL),
('c2 151 values', '{"a":' || pg_temp.vals(151) || '}', NULL),
('c3 spec example (4x3)(3x2) = 72', '{"a":{"b":{"c":["1","2","3","4"]}},"d":{"e":["1","2","3"]}}', 'MessageBody'),
('c4 (25x3)(2x1) = 150', '{"a":{"b":{"c":' || pg_temp.vals(25) || '}},"d":["1","2"]}', 'MessageBody'),
('c5 (26x3)(2x1) = 156', '{"a":{"b":{"c":' || pg_temp.vals(26) || '}},"d":["1","2"]}', 'MessageBody'),
('c6 $or 75 + 75 = 150', '{"$or":[{"a":' || pg_temp.vals(75) || '},{"b":' || pg_temp.vals(75) || '}]}', NULL),
('c7 $or 75 + 76 = 151', '{"$or":[{"a":' || pg_temp.vals(75) || '},{"b":' || pg_temp.vals(76) || '}]}', NULL),
('c8 2 x (37 + 38) = 150', '{"x":[1,2],"$or":[{"a":' || pg_temp.vals(37) || '},{"b":' || pg_temp.vals(38) || '}]}', NULL),
('c9 2 x (38 + 38) = 152', '{"x":[1,2],"$or":[{"a":' || pg_temp.vals(38) || '},{"b":' || pg_temp.vals(38) || '}]}', NULL),
('ca depth 150 x 1 value', repeat('{"a":', 149) || '{"b":[1]}' || repeat('}', 149), 'MessageBody'),
('cb depth 151 x 1 value', repeat('{"a":', 150) || '{"b":[1]}' || repeat('}', 150), 'MessageBody'),
('cc $or bomb: 2^20 conjunctions', repeat('{"$or":[{"a":[1]},{"b":[1]}],"k":', 20) || '{"c":[1]}' || repeat('}', 20), 'MessageBody'),
('cd 2 x 75 anything-but values', '{"a":[1,{"anything-but":' || pg_temp.vals(5000) || '}],"b":' || pg_temp.vals(75) || '}', NULL),
('s1 256 KB exactly', '{"a":["' || repeat('x', 262144 - 10) || '"]}', NULL),
('s2 256 KB + 1 byte', '{"a":["' || repeat('x', 262144 - 9) || '"]}', NULL),
('s3 256 KB counted in bytes', '{"a":["' || repeat('é', 131067) || '"]}', NULL),
('n1 nesting 1000', '{"a":' || repeat('[', 999) || repeat(']', 999) || '}', NULL),
('n2 nesting 1001', '{"a":' || repeat('[', 1000) || repeat(']', 1000) || '}', NULL);
SELECT id, octet_length(policy) AS bytes,
	   msgq_test.err(format('SELECT msgq.filter_policy_matches(%L, %L, %L)', policy, scope,
							'{"a":{"DataType":"Number","StringValue":"1"}}')) AS result
  FROM msgq_test.flimit ORDER BY id;

--
-- every validation error
--
CREATE TABLE msgq_test.ferr (id text PRIMARY KEY, policy text, scope text);
INSERT INTO msgq_test.ferr VALUES
('p01 syntax', '{"a":[1,]}', NULL),
('p02 truncated', '{"a":["x"', NULL),
('p03 trailing text', '{"a":["x"]} x', NULL),
('p04 duplicate key', '{"a":["x"],"a":["y"]}', NULL),
('p05 duplicate nested key', '{"a":{"b":["x"],"b":["y"]}}', 'MessageBody'),
('p06 not an object', '["a"]', NULL),
('p07 not an object: null', 'null', NULL),
('v01 string value', '{"k":"x"}', NULL),
('v02 number value', '{"k":5}', NULL),
('v03 $or member value', '{"$or":[{"k":true},{"j":[1]}]}', NULL),
('v04 empty array', '{"k":[]}', NULL),
('v05 array in array', '{"k":[["x"]]}', NULL),
('v06 empty nested object', '{"k":{}}', 'MessageBody'),
('v07 nested in attribute scope', '{"k":{"j":["x"]}}', NULL),
('v08 nested in attribute scope, explicit', '{"k":{"j":["x"]}}', 'MessageAttributes'),
('m01 two keys in a match', '{"k":[{"prefix":"a","suffix":"b"}]}', NULL),
('m02 no key in a match', '{"k":[{}]}', NULL),
('m03 unknown match type', '{"k":[{"regex":"a.*"}]}', NULL),
('m04 wildcard unsupported', '{"k":[{"wildcard":"a*"}]}', NULL),
('m05 $and unsupported', '{"k":[{"$and":[1]}]}', NULL),
('m06 prefix not a string', '{"k":[{"prefix":5}]}', NULL),
('m07 prefix object', '{"k":[{"prefix":{"equals-ignore-case":"a"}}]}', NULL),
('m08 suffix not a string', '{"k":[{"suffix":["a"]}]}', NULL),
('m09 equals-ignore-case not a string', '{"k":[{"equals-ignore-case":null}]}', NULL),
('m10 cidr not a string', '{"k":[{"cidr":10}]}', NULL),
('m11 exists not a boolean', '{"k":[{"exists":"true"}]}', NULL),
('m12 exists 1', '{"k":[{"exists":1}]}', NULL),
('a01 anything-but suffix', '{"k":[{"anything-but":{"suffix":"a"}}]}', NULL),
('a02 anything-but equals-ignore-case', '{"k":[{"anything-but":{"equals-ignore-case":"a"}}]}', NULL),
('a03 anything-but exists', '{"k":[{"anything-but":{"exists":false}}]}', NULL),
('a04 anything-but prefix not a string', '{"k":[{"anything-but":{"prefix":5}}]}', NULL),
('a05 anything-but two keys', '{"k":[{"anything-but":{"prefix":"a","suffix":"b"}}]}', NULL),
('a06 anything-but empty object', '{"k":[{"anything-but":{}}]}', NULL),
('a07 anything-but nested list', '{"k":[{"anything-but":[["a"]]}]}', NULL),
('a08 anything-but number range', '{"k":[{"anything-but":[1, 2e9]}]}', NULL),
('i01 cidr without /', '{"k":[{"cidr":"10.0.0.0"}]}', NULL),
('i02 cidr two /', '{"k":[{"cidr":"10.0.0.0/8/8"}]}', NULL),
('i03 cidr mask not a number', '{"k":[{"cidr":"10.0.0.0/x"}]}', NULL),
('i04 cidr empty mask', '{"k":[{"cidr":"10.0.0.0/"}]}', NULL),
('i05 cidr short address', '{"k":[{"cidr":"10.0.0/8"}]}', NULL),
('i06 cidr 256', '{"k":[{"cidr":"10.0.0.256/8"}]}', NULL),
('i07 cidr v4 mask 33', '{"k":[{"cidr":"10.0.0.0/33"}]}', NULL),
('i08 cidr negative mask', '{"k":[{"cidr":"10.0.0.0/-1"}]}', NULL),
('i09 cidr v6 mask 129', '{"k":[{"cidr":"2001:db8::/129"}]}', NULL),
('i10 cidr v6 two ::', '{"k":[{"cidr":"2001::db8::/64"}]}', NULL),
('i11 cidr host name', '{"k":[{"cidr":"example.com/8"}]}', NULL),
('n01 numeric not an array', '{"k":[{"numeric":5}]}', NULL),
('n02 numeric empty', '{"k":[{"numeric":[]}]}', NULL),
('n03 numeric number first', '{"k":[{"numeric":[5, "<"]}]}', NULL),
('n04 numeric object first', '{"k":[{"numeric":[{"a":1}]}]}', NULL),
('n05 numeric unknown operator', '{"k":[{"numeric":["!=", 5]}]}', NULL),
('n06 numeric = string', '{"k":[{"numeric":["=", "5"]}]}', NULL),
('n07 numeric < missing', '{"k":[{"numeric":["<"]}]}', NULL),
('n08 numeric >= string', '{"k":[{"numeric":[">=", "x"]}]}', NULL),
('n09 numeric = then more', '{"k":[{"numeric":["=", 5, "<", 6]}]}', NULL),
('n10 numeric < then >', '{"k":[{"numeric":["<", 5, ">", 1]}]}', NULL),
('n11 numeric range number', '{"k":[{"numeric":[">", 1, 5]}]}', NULL),
('n12 numeric range operator >', '{"k":[{"numeric":[">", 1, ">", 5]}]}', NULL),
('n13 numeric range top missing', '{"k":[{"numeric":[">", 1, "<"]}]}', NULL),
('n14 numeric range <= string', '{"k":[{"numeric":[">", 1, "<=", "5"]}]}', NULL),
('n15 numeric bottom > top', '{"k":[{"numeric":[">", 5, "<", 1]}]}', NULL),
('n16 numeric bottom = top', '{"k":[{"numeric":[">=", 1, "<=", 1.000001]}]}', NULL),
('n17 numeric too many terms', '{"k":[{"numeric":[">", 1, "<", 5, "x"]}]}', NULL),
('n18 numeric second key', '{"k":[{"numeric":[">", 1], "prefix":"a"}]}', NULL),
('r01 number above 10^9', '{"k":[1000000000.00001]}', NULL),
('r02 number below -10^9', '{"k":[{"numeric":["<", -1e10]}]}', NULL),
('r03 range top above 10^9', '{"k":[{"numeric":[">", 0, "<", 1.0000000001e9]}]}', NULL),
('o01 $or not an array', '{"$or":{"a":[1]}}', NULL),
('o02 $or one object', '{"$or":[{"a":[1]}]}', NULL),
('o03 $or empty', '{"$or":[]}', NULL),
('o04 $or element not an object', '{"$or":[{"a":[1]},["b"]]}', NULL),
('o05 $or empty branch', '{"$or":[{"a":[1]},{}]}', NULL),
('o06 $or nested in attribute scope', '{"$or":[{"a":[1]},{"b":{"c":[1]}}]}', NULL);
SELECT id, msgq_test.err(format('SELECT msgq.filter_policy_matches(%L, %L)', policy, scope)) AS result
  FROM msgq_test.ferr ORDER BY id;

-- the scope argument
SELECT msgq_test.err($$SELECT msgq.filter_policy_matches('{"a":["x"]}', 'messageBody')$$);
SELECT msgq_test.err($$SELECT msgq.filter_policy_matches('{"a":["x"]}', '')$$);
-- the scope is checked before the policy
SELECT msgq_test.err($$SELECT msgq.filter_policy_matches('{', 'Body')$$);

--
-- malformed message attributes (ParameterValueInvalid)
--
SELECT msgq_test.err(format('SELECT msgq.filter_policy_matches(%L, NULL, %L)', '{"a":["x"]}', a)) AS result
  FROM unnest(ARRAY[
	'[1]',
	'"x"',
	'{"a":"x"}',
	'{"a":{"StringValue":"x"}}',
	'{"a":{"DataType":"","StringValue":"x"}}',
	'{"a":{"DataType":5,"StringValue":"x"}}',
	'{"a":{"DataType":"Str","StringValue":"x"}}',
	'{"a":{"DataType":"Strings","StringValue":"x"}}',
	'{"a":{"DataType":"String"}}',
	'{"a":{"DataType":"String","StringValue":""}}',
	'{"a":{"DataType":"String","BinaryValue":"AQ=="}}',
	'{"a":{"DataType":"Number","BinaryValue":"AQ=="}}',
	'{"a":{"DataType":"Number","StringValue":"abc"}}',
	'{"a":{"DataType":"Number","StringValue":"1e"}}',
	'{"a":{"DataType":"Number","StringValue":"NaN"}}',
	'{"a":{"DataType":"Binary","StringValue":"x"}}',
	'{"a":{"DataType":"Binary"}}',
	'{"a":{"DataType":"String.Array","StringValue":"[1,2]"}}']::jsonb[]) a;

--
-- The set index against the one-policy matcher.  Policies are generated
-- from a small vocabulary of keys and values so that messages match some
-- of them; each message is matched against 60 policies at once through a
-- MsgqFilterSet and against each of them alone.
--
SELECT setseed(0.4242);
CREATE FUNCTION pg_temp.pick(VARIADIC t text[]) RETURNS text LANGUAGE sql AS $$
	SELECT t[1 + floor(random() * array_length(t, 1))::int]
$$;
CREATE FUNCTION pg_temp.rnum() RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.pick('0', '1', '2', '2.5', '5', '10', '-3', '1e1', '2.50000', '7.000001')
$$;
CREATE FUNCTION pg_temp.rstr() RETURNS text LANGUAGE sql AS $$
	SELECT pg_temp.pick('red', 'Red', 'green', 'greenish', 'blue', 'ord-1', 'ord-22',
						'x.png', '10.0.0.7', '10.1.2.3', '192.168.1.9', '2001:db8::5', '')
$$;
-- one condition
CREATE FUNCTION pg_temp.rcond() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r int := floor(random() * 17);
BEGIN
	RETURN CASE r
		WHEN 0 THEN to_json(pg_temp.rstr())::text
		WHEN 1 THEN to_json(pg_temp.rstr())::text
		WHEN 2 THEN pg_temp.rnum()
		WHEN 3 THEN pg_temp.pick('true', 'false', 'null')
		WHEN 4 THEN format('{"prefix":%s}', to_json(pg_temp.pick('ord-', 'gr', 'r', '1', '')))
		WHEN 5 THEN format('{"suffix":%s}', to_json(pg_temp.pick('.png', 'ish', 'd', '1')))
		WHEN 6 THEN format('{"equals-ignore-case":%s}', to_json(pg_temp.pick('RED', 'green', 'Blue')))
		WHEN 7 THEN format('{"anything-but":%s}', to_json(pg_temp.rstr()))
		WHEN 8 THEN format('{"anything-but":[%s,%s]}', to_json(pg_temp.rstr()), pg_temp.rnum())
		WHEN 9 THEN format('{"anything-but":{"prefix":%s}}', to_json(pg_temp.pick('ord-', 'g')))
		WHEN 10 THEN format('{"numeric":[%s,%s]}', to_json(pg_temp.pick('=', '<', '<=', '>', '>=')),
							pg_temp.rnum())
		WHEN 11 THEN format('{"numeric":[">",%s,"<=",%s]}', pg_temp.pick('-5', '0', '1'),
							pg_temp.pick('2.5', '5', '10'))
		WHEN 12 THEN '{"exists":true}'
		WHEN 13 THEN '{"exists":false}'
		WHEN 14 THEN format('{"cidr":%s}', to_json(pg_temp.pick('10.0.0.0/8', '10.0.0.0/24',
										   '192.168.0.0/16', '2001:db8::/32', '0.0.0.0/0')))
		WHEN 15 THEN pg_temp.rnum()
		ELSE to_json(pg_temp.pick('red', 'green', 'blue'))::text
	END;
END
$$;
-- an array of 1 to 3 conditions
CREATE FUNCTION pg_temp.rconds() RETURNS text LANGUAGE sql AS $$
	SELECT '[' || string_agg(pg_temp.rcond(), ',') || ']'
	  FROM generate_series(1, 1 + floor(random() * 3)::int)
$$;
-- a policy: body-scope keys may nest (k1.k2 or {"k1":{"k2":...}}), $or sometimes
CREATE FUNCTION pg_temp.rpolicy(body bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	parts text[] := '{}';
	k text;
	n int := 1 + floor(random() * 3);
BEGIN
	IF random() < 0.05 THEN
		RETURN '{}';
	END IF;
	FOR i IN 1 .. n LOOP
		k := pg_temp.pick('k1', 'k2', 'k3', 'k4');
		IF body AND random() < 0.4 THEN
			IF random() < 0.5 THEN
				parts := parts || format('"%s.%s":%s', k, pg_temp.pick('x', 'y'), pg_temp.rconds());
			ELSE
				parts := parts || format('"%s":{"%s":%s}', k, pg_temp.pick('x', 'y'), pg_temp.rconds());
			END IF;
		ELSE
			parts := parts || format('"%s":%s', k, pg_temp.rconds());
		END IF;
	END LOOP;
	IF random() < 0.25 THEN
		parts := parts || format('"$or":[{"%s":%s},{"%s":%s}]',
								 pg_temp.pick('k1', 'k5'), pg_temp.rconds(),
								 pg_temp.pick('k2', 'k6'), pg_temp.rconds());
	END IF;
	-- a key twice is a duplicate field: drop repeats
	SELECT '{' || string_agg(p, ',') || '}' INTO k
	  FROM (SELECT DISTINCT ON (split_part(p, ':', 1)) p FROM unnest(parts) p) d;
	-- a policy over the complexity limit: another one
	BEGIN
		PERFORM msgq.filter_policy_matches(k, CASE WHEN body THEN 'MessageBody' END);
	EXCEPTION WHEN OTHERS THEN
		RETURN pg_temp.rpolicy(body);
	END;
	RETURN k;
END
$$;
CREATE FUNCTION pg_temp.rvalue() RETURNS jsonb LANGUAGE sql AS $$
	SELECT CASE floor(random() * 4)::int
		WHEN 0 THEN to_jsonb(pg_temp.rstr())
		WHEN 1 THEN pg_temp.rnum()::jsonb
		WHEN 2 THEN pg_temp.pick('true', 'false', 'null')::jsonb
		ELSE jsonb_build_array(pg_temp.rstr(), pg_temp.rnum()::jsonb)
	END
$$;
CREATE FUNCTION pg_temp.rattrs() RETURNS jsonb LANGUAGE sql AS $$
	SELECT coalesce(jsonb_object_agg(k, v), '{}')
	  FROM (SELECT DISTINCT ON (k) k, v
			  FROM (SELECT pg_temp.pick('k1', 'k2', 'k3', 'k4', 'k5', 'k6') AS k,
						   CASE floor(random() * 4)::int
							   WHEN 0 THEN jsonb_build_object('DataType', 'String', 'StringValue',
															  coalesce(nullif(pg_temp.rstr(), ''), 'e'))
							   WHEN 1 THEN jsonb_build_object('DataType', 'Number', 'StringValue',
															  pg_temp.rnum())
							   WHEN 2 THEN jsonb_build_object('DataType', 'String.Array', 'StringValue',
															  jsonb_build_array(pg_temp.rstr(), pg_temp.rnum()::jsonb,
																				pg_temp.rvalue())::text)
							   ELSE jsonb_build_object('DataType', 'Binary', 'BinaryValue', 'AQ==')
						   END AS v
					  FROM generate_series(1, floor(random() * 5)::int)) g) d
$$;
CREATE FUNCTION pg_temp.rbody() RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN random() < 0.05 THEN 'not json' ELSE
		(SELECT coalesce(jsonb_object_agg(k, v), '{}')::text
		   FROM (SELECT DISTINCT ON (k) k, v
				   FROM (SELECT pg_temp.pick('k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k1.x') AS k,
								CASE floor(random() * 4)::int
									WHEN 0 THEN jsonb_build_object('x', pg_temp.rvalue(),
																   'y', pg_temp.rvalue())
									WHEN 1 THEN jsonb_build_array(jsonb_build_object('x', pg_temp.rvalue()),
																  pg_temp.rvalue())
									ELSE pg_temp.rvalue()
								END AS v
						   FROM generate_series(1, floor(random() * 5)::int)) g) d)
	END
$$;

CREATE TABLE msgq_test.fset AS
SELECT m AS msg, pg_temp.rattrs() AS attrs, pg_temp.rbody() AS body,
	   array_agg(p.policy ORDER BY p.i) AS policies,
	   array_agg(p.scope ORDER BY p.i) AS scopes
  FROM generate_series(1, 60) m,
	   LATERAL (SELECT i, CASE WHEN i % 2 = 0 THEN 'MessageBody' END AS scope,
					   CASE WHEN i % 29 = 0 THEN NULL
							ELSE pg_temp.rpolicy(i % 2 = 0) END AS policy
				  FROM generate_series(1, 60) i WHERE m > 0) p
 GROUP BY m;
CREATE TABLE msgq_test.fsetres AS
SELECT s.msg, u.i, s.policies[u.i] AS policy, s.scopes[u.i] AS scope, u.by_set,
	   msgq.filter_policy_matches(s.policies[u.i], s.scopes[u.i], s.attrs, s.body) AS alone
  FROM msgq_test.fset s,
	   unnest(msgq_test.filter_set_check(s.policies, s.scopes, s.attrs, s.body))
		   WITH ORDINALITY AS u(by_set, i);
SELECT count(*) >= 3000 AS enough_pairs,
	   count(*) FILTER (WHERE alone) > 300 AS many_match,
	   count(*) FILTER (WHERE NOT alone) > 300 AS many_do_not,
	   count(*) FILTER (WHERE alone AND scope = 'MessageBody' AND policy <> '{}') > 50 AS body_matches,
	   count(*) FILTER (WHERE alone AND scope IS NULL AND policy <> '{}') > 50 AS attribute_matches,
	   count(*) FILTER (WHERE by_set IS DISTINCT FROM alone) AS disagreements
  FROM msgq_test.fsetres;
-- any disagreement, to see it
SELECT msg, i, policy, scope, by_set, alone FROM msgq_test.fsetres
 WHERE by_set IS DISTINCT FROM alone ORDER BY msg, i LIMIT 5;

-- many policies of one set: 2,000 exact values, prefixes, ranges and
-- CIDR blocks, each matching its own message only
CREATE TABLE msgq_test.fbig AS
SELECT i, CASE i % 4
			WHEN 0 THEN format('{"id":["v%s"]}', i)
			WHEN 1 THEN format('{"id":[{"prefix":"p%s-"}]}', i)
			WHEN 2 THEN format('{"n":[{"numeric":[">=",%s,"<",%s]}]}', i * 10, i * 10 + 1)
			ELSE format('{"ip":[{"cidr":"10.%s.%s.0/24"}]}', i / 256, i % 256)
		  END AS policy,
		  CASE i % 4
			WHEN 0 THEN pg_temp.a('id', 'String', 'v' || i)
			WHEN 1 THEN pg_temp.a('id', 'String', 'p' || i || '-x')
			WHEN 2 THEN pg_temp.a('n', 'Number', (i * 10 + 0.5)::text)
			ELSE pg_temp.a('ip', 'String', format('10.%s.%s.9', i / 256, i % 256))
		  END AS attrs
  FROM generate_series(1, 2000) i;
SELECT count(*) AS messages,
	   count(*) FILTER (WHERE r.n = 1 AND r.hit) AS exactly_its_own
  FROM msgq_test.fbig b,
	   LATERAL (SELECT count(*) FILTER (WHERE x) AS n, bool_or(x AND o = b.i) AS hit
				  FROM unnest(msgq_test.filter_set_check(
							  (SELECT array_agg(policy ORDER BY i) FROM msgq_test.fbig),
							  NULL, b.attrs, NULL)) WITH ORDINALITY AS u(x, o)) r
 WHERE b.i % 50 < 4 AND b.i < 1000;

DROP TABLE msgq_test.fcase, msgq_test.flimit, msgq_test.ferr, msgq_test.fset,
	msgq_test.fsetres, msgq_test.fbig;

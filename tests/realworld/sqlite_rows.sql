-- sqlite_rows.sql: read by `sqlite3 -batch :memory:` (through tests/preload/run_same.sh, plain
-- and under LD_PRELOAD=libhakmem.so): a million rows inserted from recursive CTEs into an
-- in-memory database (every page from malloc), two indexes, aggregates, joins, window functions,
-- sorts without an index, updates and deletes, an integrity check and a VACUUM. Every result is
-- deterministic, so both runs must print the same lines.
.bail on
.mode list
.headers off
PRAGMA cache_size = -131072;
PRAGMA temp_store = MEMORY;

CREATE TABLE grp(id INTEGER PRIMARY KEY, label TEXT NOT NULL, weight INTEGER NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
INSERT INTO grp SELECT i, printf('group-%04d-%s', i, substr('abcdefghijklmnopqrstuvwxyz', i % 26 + 1, i % 7 + 1)), i * 37 % 101
FROM n;

CREATE TABLE item(
  id INTEGER PRIMARY KEY,
  grp INTEGER NOT NULL REFERENCES grp(id),
  name TEXT NOT NULL,
  price INTEGER NOT NULL,
  note TEXT
);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO item
SELECT i, i * 7 % 1000, printf('item-%08x', i * 2654435761 % 4294967296), i * 7919 % 100000,
       CASE WHEN i % 5 = 0 THEN NULL ELSE printf('%.*c-%d', i % 97, 'n', i) END
FROM n;
COMMIT;

CREATE INDEX item_grp_price ON item(grp, price);
CREATE INDEX item_name ON item(name);

SELECT 'rows', count(*), sum(price), min(name), max(name), sum(length(note)), count(note) FROM item;
SELECT 'top groups', grp, count(*), sum(price), max(price) FROM item
GROUP BY grp ORDER BY sum(price) DESC, grp LIMIT 5;
SELECT 'join', g.label, count(*), sum(i.price) FROM item AS i JOIN grp AS g ON g.id = i.grp
WHERE i.price BETWEEN 99000 AND 99999 AND g.weight > 50
GROUP BY g.label ORDER BY count(*) DESC, g.label LIMIT 5;
SELECT 'by name', id, name FROM item WHERE name >= 'item-8' ORDER BY name LIMIT 3;
SELECT 'median-ish', name FROM item ORDER BY name LIMIT 1 OFFSET 500000;
SELECT 'unindexed sort', id, price, note IS NULL FROM item ORDER BY price % 1013 DESC, length(note), id DESC LIMIT 3;
SELECT 'window', id, sum(price) OVER (ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW),
       rank() OVER (PARTITION BY grp ORDER BY price DESC)
FROM item WHERE grp = 7 ORDER BY id LIMIT 4;
SELECT 'concat', length(group_concat(name, ',')), count(DISTINCT substr(name, 6, 3)) FROM item WHERE grp < 100;
SELECT 'distinct prices', count(DISTINCT price) FROM item;
SELECT 'self join', count(*) FROM item AS a JOIN item AS b ON b.id = a.id * 3 WHERE a.grp = b.grp;

UPDATE item SET price = price * 2, note = upper(note) WHERE grp % 7 = 0;
DELETE FROM item WHERE id % 3 = 0;
SELECT 'after update', count(*), sum(price), sum(length(note)) FROM item;
CREATE TABLE summary AS SELECT grp, count(*) AS n, sum(price) AS total FROM item GROUP BY grp;
SELECT 'summary', count(*), sum(n), sum(total), max(total) FROM summary;
DROP INDEX item_name;
VACUUM;
SELECT 'integrity', * FROM pragma_integrity_check;
SELECT 'after vacuum', count(*), sum(price) FROM item INDEXED BY item_grp_price WHERE grp >= 0;

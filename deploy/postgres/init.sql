-- Run once by the official postgres image (docker-compose.yml mounts it into
-- /docker-entrypoint-initdb.d), as the superuser, and only when the data volume is empty:
-- after editing, `docker compose down -v` is needed for it to run again.
--
-- Each service gets a login role that owns exactly its own database (architecture §4), so a
-- service cannot read or join another service's tables even by mistake. The passwords equal
-- the role names and suit a local compose stack only; any shared deployment sets real ones.

CREATE ROLE intake LOGIN PASSWORD 'intake';
CREATE ROLE screening LOGIN PASSWORD 'screening';
CREATE ROLE casework LOGIN PASSWORD 'casework';

CREATE DATABASE intake OWNER intake ENCODING 'UTF8';
CREATE DATABASE screening OWNER screening ENCODING 'UTF8';
CREATE DATABASE casework OWNER casework ENCODING 'UTF8';

-- PUBLIC gets CONNECT and TEMP on every new database by default; taking them away leaves each
-- database reachable only by its owner (and the superuser).
REVOKE ALL ON DATABASE intake FROM PUBLIC;
REVOKE ALL ON DATABASE screening FROM PUBLIC;
REVOKE ALL ON DATABASE casework FROM PUBLIC;

//! Dropping what a `PostgresStore` created under one table prefix, for the tests and the load
//! benchmark. The tables, sequences and functions are found in the catalog by name, so a later
//! migration's new ones need no edit here.

/// The SQL that drops every table, sequence and function of the current schema whose name
/// starts with `prefix`: a validated `TablePrefix` (letters, digits and `_`, so it is safe
/// inside the quotes). No prefix the tests and the benchmark use starts another one.
pub(crate) fn drop_prefix_sql(prefix: &str) -> String {
    format!(
        "DO $$ DECLARE r record; BEGIN \
           FOR r IN SELECT format('DROP TABLE IF EXISTS %I CASCADE', tablename) AS q \
             FROM pg_tables WHERE schemaname = current_schema() \
             AND starts_with(tablename, '{prefix}') LOOP EXECUTE r.q; END LOOP; \
           FOR r IN SELECT format('DROP SEQUENCE IF EXISTS %I', sequencename) AS q \
             FROM pg_sequences WHERE schemaname = current_schema() \
             AND starts_with(sequencename, '{prefix}') LOOP EXECUTE r.q; END LOOP; \
           FOR r IN SELECT format('DROP FUNCTION IF EXISTS %s CASCADE', p.oid::regprocedure) AS q \
             FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace \
             WHERE n.nspname = current_schema() AND starts_with(p.proname, '{prefix}') \
             LOOP EXECUTE r.q; END LOOP; \
         END $$"
    )
}

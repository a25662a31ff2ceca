-- hydra-dashboard's own schema in a team's PostgreSQL (docs/postgres.md says why it is
-- shaped so). `hydra-dashboard sync` writes it, `serve --store` reads it; both apply these
-- migrations on first connect.

-- A machine that ships runs (`sync --node`, default: its hostname).
CREATE TABLE nodes (
    node        text PRIMARY KEY,
    first_seen  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

-- A model lineage as the node's sources read it (model::Model as JSON).
CREATE TABLE models (
    model_id    text PRIMARY KEY,
    record      jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Bumped whenever a run's record changes: how a dashboard notices new and changed runs.
CREATE SEQUENCE run_changes;

-- A run as the node's sources read it (model::Run as JSON: its state and last sign of life
-- as judged on the node), its evaluations, and how far its records were shipped.
CREATE TABLE runs (
    run_id      text PRIMARY KEY,
    model_id    text NOT NULL,
    node        text NOT NULL REFERENCES nodes (node),
    record      jsonb NOT NULL,
    evals       jsonb NOT NULL DEFAULT '[]',
    -- Steps shipped, and the newest of them.
    steps       bigint NOT NULL DEFAULT 0,
    newest_step bigint,
    changed     bigint NOT NULL DEFAULT nextval('run_changes'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_by_model ON runs (model_id);

-- A run's steps, one column at a time, in chunks of about a thousand consecutive steps:
-- a chart of one metric over a million steps reads a thousand rows of one column, not a
-- million rows of every column. `lo`/`hi` are the chunk's finite extremes (NULL when none).
-- A chunk is keyed by its place in the run, so shipping the same steps again rewrites the
-- same rows with the same bytes; only the newest chunk of a training run changes.
CREATE TABLE step_chunks (
    run_id      text NOT NULL,
    col         text NOT NULL,
    chunk       integer NOT NULL,
    first_step  bigint NOT NULL,
    last_step   bigint NOT NULL,
    n           integer NOT NULL,
    lo          double precision,
    hi          double precision,
    data        bytea NOT NULL,
    PRIMARY KEY (run_id, col, chunk)
);
-- Eight bytes a value do not compress: store them as they are, without trying.
ALTER TABLE step_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- Routing (MoD, MoR, MoE) and adaptive-LR records, in chunks the same way: JSON arrays,
-- kept as written (`json`, not `jsonb`) so a chunk shipped again compares equal. A chunk
-- never splits one step's layers.
CREATE TABLE record_chunks (
    run_id      text NOT NULL,
    kind        text NOT NULL,
    chunk       integer NOT NULL,
    first_step  bigint NOT NULL,
    last_step   bigint NOT NULL,
    n           integer NOT NULL,
    data        json NOT NULL,
    PRIMARY KEY (run_id, kind, chunk)
);

-- Where the live feed stands: every new record a batch brings takes the next position.
-- One row, updated by each batch as its last statement: a writer holds it until it
-- commits, so positions are handed out in commit order and a dashboard that has read up to
-- a position has seen every batch below it. `epoch` moves when a batch rewrites records
-- already shipped (a resumed run's later records win): dashboards then read again.
CREATE TABLE feed_positions (
    only_row    boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    pos         bigint NOT NULL DEFAULT 0,
    epoch       bigint NOT NULL DEFAULT 0
);
INSERT INTO feed_positions DEFAULT VALUES;

-- One row per shipped batch, in commit order; announced with NOTIFY on `hydra_batches`.
CREATE TABLE batches (
    seq         bigserial PRIMARY KEY,
    run_id      text NOT NULL,
    node        text NOT NULL,
    -- `steps`, or the record kind (`routing_mod`, …).
    feed        text NOT NULL,
    -- The run's newest shipped step before this batch (NULL: none); its new records are
    -- those after it, up to `newest_step`, at positions pos_last - records + 1 ..= pos_last.
    after_step  bigint,
    newest_step bigint,
    records     bigint NOT NULL,
    pos_last    bigint NOT NULL,
    rewrote     boolean NOT NULL DEFAULT false,
    shipped_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batches_by_run ON batches (run_id, feed, pos_last);

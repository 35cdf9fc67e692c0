-- The verifiable ledger (issue 5, docs/ledger.md): one RFC 9162 Merkle tree per tenant over
-- that tenant's events in position order. Derived from the log, never truth by itself: whatever
-- is here can be recomputed from the events and is checked against the signed checkpoints by
-- `consentry verify database`. Append-only, like the log: nodes are written once, by the batch
-- that completes them (the primary keys refuse a second writer, so two integrators cannot fork
-- a tree), and the integrated position is MAX(position) of ledger_leaves, in the same
-- transaction as the nodes: a crash leaves the ledger at the last committed batch.

-- Leaf i of a tenant's tree: which event it is, and its leaf hash (the tree's level 0).
CREATE TABLE ledger_leaves (
    tenant      TEXT NOT NULL,
    leaf_index  BIGINT NOT NULL,
    position    BIGINT NOT NULL UNIQUE,
    event_id    UUID NOT NULL,
    leaf_hash   BYTEA NOT NULL,
    PRIMARY KEY (tenant, leaf_index)
);

-- Interior nodes of complete subtrees: (level, node_index) covers the leaves
-- [node_index * 2^level, (node_index + 1) * 2^level). Only levels 4, 8, 12, ... are stored
-- (ledger_store.NODE_LEVEL_STEP): the levels between are recomputed from at most 8 stored nodes.
CREATE TABLE ledger_nodes (
    tenant      TEXT NOT NULL,
    level       SMALLINT NOT NULL,
    node_index  BIGINT NOT NULL,
    hash        BYTEA NOT NULL,
    CHECK (level > 0 AND level % 4 = 0),
    PRIMARY KEY (tenant, level, node_index)
);

-- Signed checkpoints (C2SP signed notes) as the integrator stored them.
CREATE TABLE ledger_checkpoints (
    tenant      TEXT NOT NULL,
    tree_size   BIGINT NOT NULL,
    root_hash   BYTEA NOT NULL,
    signed_at   TIMESTAMPTZ NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (tenant, tree_size)
);

-- consentry_append_only() comes from 0001.
CREATE TRIGGER ledger_leaves_append_only BEFORE UPDATE OR DELETE ON ledger_leaves
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER ledger_leaves_no_truncate BEFORE TRUNCATE ON ledger_leaves
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER ledger_nodes_append_only BEFORE UPDATE OR DELETE ON ledger_nodes
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER ledger_nodes_no_truncate BEFORE TRUNCATE ON ledger_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER ledger_checkpoints_append_only BEFORE UPDATE OR DELETE ON ledger_checkpoints
    FOR EACH ROW EXECUTE FUNCTION consentry_append_only();
CREATE TRIGGER ledger_checkpoints_no_truncate BEFORE TRUNCATE ON ledger_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION consentry_append_only();

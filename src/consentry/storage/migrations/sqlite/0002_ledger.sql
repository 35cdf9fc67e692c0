-- The verifiable ledger (issue 5, docs/ledger.md): one RFC 9162 Merkle tree per tenant over
-- that tenant's events in position order. Derived from the log, never truth by itself: whatever
-- is here can be recomputed from the events and is checked against the signed checkpoints by
-- `consentry verify database`. Append-only, like the log: nodes are written once, by the batch
-- that completes them (the primary keys refuse a second writer, so two integrators cannot fork
-- a tree), and the integrated position is MAX(position) of ledger_leaves, in the same
-- transaction as the nodes: a crash leaves the ledger at the last committed batch.

-- Leaf i of a tenant's tree: which event it is, and its leaf hash (the tree's level 0).
-- Keyed by position (the rowid: appends go to the end of the table, ~10% faster than a
-- WITHOUT ROWID table keyed by (tenant, leaf_index)); UNIQUE (tenant, leaf_index) refuses a
-- second writer of the same leaf.
CREATE TABLE ledger_leaves (
    position    INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    leaf_index  INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    leaf_hash   BLOB NOT NULL,
    UNIQUE (tenant, leaf_index)
);

-- Interior nodes of complete subtrees: (level, node_index) covers the leaves
-- [node_index * 2^level, (node_index + 1) * 2^level). Only levels 4, 8, 12, ... are stored
-- (ledger_store.NODE_LEVEL_STEP): the levels between are recomputed from at most 8 stored nodes.
CREATE TABLE ledger_nodes (
    tenant      TEXT NOT NULL,
    level       INTEGER NOT NULL,
    node_index  INTEGER NOT NULL,
    hash        BLOB NOT NULL,
    CHECK (level > 0 AND level % 4 = 0),
    PRIMARY KEY (tenant, level, node_index)
) WITHOUT ROWID;

-- Signed checkpoints (C2SP signed notes) as the integrator stored them.
CREATE TABLE ledger_checkpoints (
    tenant      TEXT NOT NULL,
    tree_size   INTEGER NOT NULL,
    root_hash   BLOB NOT NULL,
    signed_at   TEXT NOT NULL,
    note        TEXT NOT NULL,
    PRIMARY KEY (tenant, tree_size)
);

CREATE TRIGGER ledger_leaves_no_update BEFORE UPDATE ON ledger_leaves
BEGIN SELECT RAISE(ABORT, 'consentry: ledger leaves are append-only'); END;
CREATE TRIGGER ledger_leaves_no_delete BEFORE DELETE ON ledger_leaves
BEGIN SELECT RAISE(ABORT, 'consentry: ledger leaves are append-only'); END;
CREATE TRIGGER ledger_nodes_no_update BEFORE UPDATE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'consentry: ledger nodes are append-only'); END;
CREATE TRIGGER ledger_nodes_no_delete BEFORE DELETE ON ledger_nodes
BEGIN SELECT RAISE(ABORT, 'consentry: ledger nodes are append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_update BEFORE UPDATE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'consentry: ledger checkpoints are append-only'); END;
CREATE TRIGGER ledger_checkpoints_no_delete BEFORE DELETE ON ledger_checkpoints
BEGIN SELECT RAISE(ABORT, 'consentry: ledger checkpoints are append-only'); END;

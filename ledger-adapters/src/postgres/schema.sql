-- The tables of the PostgreSQL reference ledger (ledger-adapters/src/postgres.rs).
--
-- Every statement is idempotent. `PostgresLedger::connect` runs this whole file when its version
-- (below) is not yet applied, inside one SQL transaction that first takes an advisory lock, so
-- processes starting at the same moment neither race on CREATE nor see half a schema. Several
-- ledgers may share one database: every table is keyed by ledger_id. Rows are never deleted: a
-- transaction's record is what keeps every later call about it idempotent.

CREATE TABLE IF NOT EXISTS corridor_ledgers (
    ledger_id    TEXT PRIMARY KEY,
    -- ISO 4217 code. A ledger id is bound to its currency for good: connect refuses another one.
    currency     TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    -- Everything ever issued on this ledger, in minor units: what the audit checks conservation
    -- against. NUMERIC(38, 0) so no sequence of issuances overflows it, and any value fits an i128.
    issued_minor NUMERIC(38, 0) NOT NULL DEFAULT 0 CHECK (issued_minor >= 0)
);

CREATE TABLE IF NOT EXISTS corridor_ledger_accounts (
    ledger_id     TEXT NOT NULL REFERENCES corridor_ledgers (ledger_id),
    account       TEXT NOT NULL,
    balance_minor BIGINT NOT NULL DEFAULT 0,
    -- The sum of the holds that prepared, undecided transactions place on this account.
    held_minor    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (ledger_id, account),
    -- No overdraft, kept by the database itself and not only by the ledger code: whatever a bug
    -- or an unforeseen interleaving of concurrent prepares does, a write that would leave a hold
    -- negative or an available balance (balance - held) below zero fails and rolls back.
    CONSTRAINT corridor_ledger_accounts_held_not_negative CHECK (held_minor >= 0),
    CONSTRAINT corridor_ledger_accounts_available_not_negative CHECK (balance_minor >= held_minor)
);

CREATE TABLE IF NOT EXISTS corridor_ledger_transactions (
    ledger_id       TEXT NOT NULL REFERENCES corridor_ledgers (ledger_id),
    -- The payment id (UUID v7); the same id is a transaction on every ledger of the payment.
    transaction_id  UUID NOT NULL,
    state           TEXT NOT NULL
        CONSTRAINT corridor_ledger_transactions_known_state
        CHECK (state IN ('prepared', 'committed', 'aborted', 'refused')),
    -- Why the ledger voted no (RefusalCode::as_str and the message), for refused ones only.
    refusal_code    TEXT,
    refusal_message TEXT,
    -- When the prepare reached the ledger, on the ledger process's clock: `in_doubt` compares it
    -- with an instant of that same clock.
    prepared_at     TIMESTAMPTZ NOT NULL,
    -- When the ledger voted no, committed or aborted (database clock); for operators only.
    decided_at      TIMESTAMPTZ,
    PRIMARY KEY (ledger_id, transaction_id),
    CONSTRAINT corridor_ledger_transactions_refusal_iff_refused
        CHECK ((state = 'refused') = (refusal_code IS NOT NULL AND refusal_message IS NOT NULL))
);

-- `in_doubt`: undecided prepares of one ledger, oldest first.
CREATE INDEX IF NOT EXISTS corridor_ledger_transactions_in_doubt
    ON corridor_ledger_transactions (ledger_id, prepared_at, transaction_id)
    WHERE state = 'prepared';

-- The postings of a transaction as the prepare sent them, in order: a repeated prepare is compared
-- with them, and commit and abort post or void exactly what the prepare held for.
CREATE TABLE IF NOT EXISTS corridor_ledger_postings (
    ledger_id      TEXT NOT NULL,
    transaction_id UUID NOT NULL,
    position       INTEGER NOT NULL CHECK (position >= 0),
    -- No foreign key to the accounts: a refused prepare may name an account that does not exist.
    account        TEXT NOT NULL,
    currency       TEXT NOT NULL,
    amount_minor   BIGINT NOT NULL CHECK (amount_minor <> 0),
    PRIMARY KEY (ledger_id, transaction_id, position),
    FOREIGN KEY (ledger_id, transaction_id)
        REFERENCES corridor_ledger_transactions (ledger_id, transaction_id)
);

-- Which versions of this file have been applied. `connect` runs the file only when its version is
-- missing: even `IF NOT EXISTS`, CREATE INDEX takes a table lock that would stall live prepares
-- and commits every time a ledger process starts. A change to this file bumps the version.
CREATE TABLE IF NOT EXISTS corridor_ledger_schema (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

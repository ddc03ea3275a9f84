"""A statement's span is named by its query summary: operations and tables in order."""

from __future__ import annotations

import pytest

import projections.orders
from orders import readmodel
from orders.eventstore import sql
from orders.eventstore.statement_spans import MAX_SUMMARY, connection_attributes, query_summary


@pytest.mark.parametrize(
    ("statement", "summary"),
    [
        (readmodel.GET_ORDER, "SELECT orders"),
        (readmodel.COUNT_ORDERS, "SELECT owner_order_counts"),
        (readmodel.COUNT_ORDERS_OF_ANYONE, "SELECT order_counts"),
        (sql.READ_ALL, "SELECT events"),
        (sql.ENSURE_REPLICATED, "SELECT"),
        (
            sql.START_STREAMS.format(then=""),
            "SELECT INSERT events SELECT replication_barrier SELECT new_events SELECT events "
            "SELECT new_events",
        ),
        (
            sql.START_STREAMS.format(then=projections.orders.INLINE),
            "SELECT INSERT events SELECT replication_barrier SELECT new_events INSERT orders "
            "SELECT new_events changes UPDATE UPDATE orders changes SELECT new_events INSERT "
            "order_counts SELECT projected_orders UPDATE INSERT owner_order_counts SELECT "
            "projected_orders",
        ),
        # A batch of compare-and-set appends reads each stream's version (events) where a
        # batch of starts reads the rows it did not insert (new_events).
        (
            sql.APPEND_EACH.format(then=""),
            "INSERT events SELECT SELECT events SELECT new_events",
        ),
        (
            sql.APPEND_EACH.format(then=projections.orders.INLINE),
            "INSERT events SELECT SELECT events SELECT new_events INSERT orders SELECT new_events "
            "changes UPDATE UPDATE orders changes SELECT new_events INSERT order_counts SELECT "
            "projected_orders UPDATE INSERT owner_order_counts SELECT projected_orders UPDATE "
            "SELECT",
        ),
        (sql.STREAM_VERSIONS, "SELECT SELECT events"),
    ],
)
def test_our_statements_are_named_by_what_they_do(statement: str, summary: str) -> None:
    assert query_summary(statement) == summary


@pytest.mark.parametrize(
    ("statement", "summary"),
    [
        (
            'update "Orders" set n = 1 where id in (select id from a join b using (id))',
            "UPDATE Orders SELECT a b",
        ),
        ("DELETE FROM t -- FROM comment", "DELETE t"),
        ("SELECT 'FROM quoted' /* FROM block */ FROM t", "SELECT t"),
        ("SELECT x FROM unnest($1::int[]) AS x", "SELECT"),
        ("SELECT extract(epoch FROM now())", "SELECT"),
        ("INSERT INTO t(a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", "INSERT t UPDATE"),
        ("SHOW lock_timeout", "postgresql"),
    ],
)
def test_functions_strings_and_comments_are_not_tables(statement: str, summary: str) -> None:
    assert query_summary(statement) == summary


def test_a_long_summary_is_cut_at_a_word() -> None:
    summary = query_summary(" UNION ALL ".join(["SELECT position FROM events"] * 40))

    assert len(summary) <= MAX_SUMMARY
    assert summary.startswith("SELECT events SELECT events ")
    assert set(summary.split()) == {"SELECT", "events"}


def test_the_server_is_described_from_the_dsn() -> None:
    assert connection_attributes("postgresql://app:secret@db.internal:6543/orders") == {
        "db.system.name": "postgresql",
        "db.namespace": "orders",
        "server.address": "db.internal",
        "server.port": 6543,
    }
    assert connection_attributes("postgresql://postgres:@/orders?host=/run/pg") == {
        "db.system.name": "postgresql",
        "db.namespace": "orders",
        "server.address": "/run/pg",
        "server.port": 5432,
    }

#!/usr/bin/env python3
"""The PostgreSQL floor for /sync: the three sorted result sets hr-bridge reads
(employees, departments, memberships; the same SQL as scripts/bench.sh's
floor_once), received with COPY by psycopg 3 in one process, data thrown away.

Prints the seconds of each run, one a line (connect and all three COPYs, timed
inside the process, so interpreter start-up is not counted).

    scripts/pg_copy_floor.py postgres://postgres@127.0.0.1:5432/hrb_bench_postgres_1000000
    scripts/pg_copy_floor.py --runs 5 --format binary URL

Needs psycopg 3 (`pip install 'psycopg[binary]'`, in a venv such as
target/pyenv: python3 -m venv target/pyenv && target/pyenv/bin/pip install 'psycopg[binary]').
"""

import argparse
import time

import psycopg

EMPLOYEES_SQL = (
    "SELECT username, email, nick_name, ad_no, company, phone1, phone2, extension_no, gender "
    "FROM employees WHERE active ORDER BY username"
)
DEPARTMENTS_SQL = (
    "SELECT group_no, display_name, parent_group_no, active FROM departments ORDER BY group_no"
)
MEMBERS_SQL = "SELECT group_no, username FROM department_members ORDER BY group_no, username"


def once(url: str, fmt: str) -> tuple[float, int]:
    """One run: seconds, and the bytes received (to show the data really came)."""
    received = 0
    start = time.perf_counter()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            for sql in (EMPLOYEES_SQL, DEPARTMENTS_SQL, MEMBERS_SQL):
                with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT {fmt})") as copy:
                    for data in copy:
                        received += len(data)
    return time.perf_counter() - start, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="postgres:// URL of the seeded database")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--format", choices=("text", "binary"), default="text")
    parser.add_argument(
        "--bytes", action="store_true", help="also print the bytes received"
    )
    args = parser.parse_args()
    for _ in range(args.runs):
        seconds, received = once(args.url, args.format)
        print(f"{seconds:.3f} {received}" if args.bytes else f"{seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()

"""The PostgreSQL floor for /sync: the three sorted result sets hr-bridge reads,
received with psycopg 3's COPY in one process, in one repeatable-read
transaction as hr-bridge reads them (the connection is made before the clock
starts). Prints the seconds of one run. scripts/bench.sh passes the same SQL
its own client floor uses and takes the median of 5.

    bench-pg-floor.py DSN EMPLOYEES_SQL DEPARTMENTS_SQL MEMBERS_SQL
"""

import sys
import time

import psycopg


def main():
    dsn, *queries = sys.argv[1:]
    with psycopg.connect(dsn, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        start = time.perf_counter()
        received = 0
        with conn.cursor() as cur:
            for query in queries:
                with cur.copy(f"COPY ({query}) TO STDOUT") as copy:
                    for block in copy:
                        received += len(block)
        elapsed = time.perf_counter() - start
    print(f"{elapsed:.3f}")
    print(f"received {received} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()

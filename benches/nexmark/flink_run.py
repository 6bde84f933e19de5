"""Runs one Nexmark query in Flink SQL (PyFlink, local mode, parallelism 1) over the JSON files
written by `nexmark --export-json DIR`, into a blackhole sink, and prints one JSON line with the
CPU seconds the JVM spent on the job (utime + stime of the JVM process, read from /proc before and
after the job; JVM start-up is excluded, planning and JIT warm-up are included), the wall time and
the events read.

    flink_run.py --query q0 --data DIR [--sql-dir benches/nexmark/flink]
"""

import argparse
import json
import os
import re
import sys
import time

SOURCES = {
    "person": "id BIGINT, name STRING, email_address STRING, credit_card STRING, city STRING, state STRING, "
    "date_time BIGINT, extra STRING",
    "auction": "id BIGINT, item_name STRING, description STRING, initial_bid BIGINT, reserve BIGINT, "
    "date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra STRING, "
    "expiresTime AS TO_TIMESTAMP_LTZ(expires, 3)",
    "bid": "auction BIGINT, bidder BIGINT, price BIGINT, channel STRING, url STRING, date_time BIGINT, "
    "extra STRING, p_time AS PROCTIME()",
}


def jvm_cpu_seconds():
    """CPU seconds of every descendant of this process (the JVM the gateway started)."""
    me = os.getpid()
    parents, times = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        parents[int(pid)] = int(rest[1])
        times[int(pid)] = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid, t in times.items():
        p = pid
        while p in parents and p != me and p > 1:
            p = parents[p]
        if p == me and pid != me:
            total += t
    return total


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 24)
            if not b:
                return n
            n += b.count(b"\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--query", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--sql-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "flink"))
    args = ap.parse_args()
    sql = open(os.path.join(args.sql_dir, args.query + ".sql")).read().strip().rstrip(";")
    used = [t for t in SOURCES if re.search(r"\b%s\b" % t, sql, re.IGNORECASE)]
    # Only table references count: `auction` is also a column of bid (q18's `PARTITION BY
    # bidder, auction` once credited Flink with the auctions too); a comma join is `FROM a [A], b`.
    used = [
        t for t in used
        if re.search(r"(FROM|JOIN|TABLE)\s+%s\b" % t, sql, re.IGNORECASE)
        or re.search(r"FROM\s+\w+(\s+\w+)?\s*,\s*%s\b" % t, sql, re.IGNORECASE)
    ]
    events = sum(count_lines(os.path.join(args.data, t + ".json")) for t in used)

    from pyflink.table import EnvironmentSettings, TableEnvironment, TableDescriptor

    # A small sample of the inputs: a first run warms the JVM up (class loading, JIT), a second one
    # measures the fixed cost of planning and running a job, which the "net" figure subtracts.
    sample = os.path.join(args.data, "sample")
    if not os.path.exists(os.path.join(sample, "bid.json")):
        os.makedirs(sample, exist_ok=True)
        for t in SOURCES:
            with open(os.path.join(args.data, t + ".json"), "rb") as f, open(os.path.join(sample, t + ".json"), "wb") as o:
                for _, line in zip(range(20000), f):
                    o.write(line)
    runs = []
    for i, data in enumerate([sample, sample, args.data]):
        env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
        conf = env.get_config()
        conf.set("parallelism.default", "1")
        conf.set("pipeline.object-reuse", "true")
        conf.set("table.local-time-zone", "UTC")
        for t, cols in SOURCES.items():
            path = os.path.abspath(os.path.join(data, t + ".json"))
            env.execute_sql(
                f"CREATE TABLE {t} ({cols}, `dateTime` AS TO_TIMESTAMP_LTZ(date_time, 3), "
                f"WATERMARK FOR `dateTime` AS `dateTime`) "
                f"WITH ('connector' = 'filesystem', 'path' = 'file://{path}', 'format' = 'json')"
            )
        cpu0, t0 = jvm_cpu_seconds(), time.time()
        table = env.sql_query(sql)
        table.execute_insert(TableDescriptor.for_connector("blackhole").build()).wait()
        runs.append((time.time() - t0, jvm_cpu_seconds() - cpu0))
    (_, _), (fixed_wall, fixed_cpu), (wall, cpu) = runs
    net = max(cpu - fixed_cpu, 1e-9)
    print("RESULT " + json.dumps({
        "query": args.query, "engine": "flink", "events": events, "wall_s": wall, "cpu_s": cpu,
        "fixed_cpu_s": fixed_cpu, "fixed_wall_s": fixed_wall,
        "events_per_sec": events / wall, "events_per_cpu_sec": events / cpu,
        "events_per_net_cpu_sec": events / net,
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()

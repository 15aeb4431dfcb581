#!/usr/bin/env python3
"""Probes a URL 20 times a second for N seconds on one keep-alive connection and
prints the latency percentiles as JSON (used by bench.sh during the auth storm)."""
import http.client
import json
import sys
import time
from urllib.parse import urlparse

url, seconds = urlparse(sys.argv[1]), float(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
samples, failures, end = [], 0, time.monotonic() + seconds
while time.monotonic() < end:
    start = time.perf_counter()
    try:
        conn.request("GET", url.path)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            failures += 1
    except OSError:
        failures += 1
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    samples.append((time.perf_counter() - start) * 1000)
    time.sleep(0.05)
samples.sort()
pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(json.dumps({"count": len(samples), "failures": failures, "p50_ms": pick(0.5),
                  "p99_ms": pick(0.99), "max_ms": samples[-1]}))

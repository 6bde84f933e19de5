"""Browser test of the web console (issue 17) against a running `eddy server`.

Usage: console_test.py BASE_URL OUTDIR      e.g. console_test.py http://127.0.0.1:8088 /tmp/shots

Drives Debian's Chromium (/usr/bin/chromium, or $EDDY_CHROMIUM) headless with Playwright for
Python (pinned in .ci/requirements.txt; `playwright install` is never needed). Prints `ok <step>`
per step (console, editor with errors, push query, stop, persistent query, queries list,
query page graph and rates, pause/resume, an unreachable server, pull query, history, catalog
with a live tail, health), writes a screenshot of each view into OUTDIR (editor.png, queries.png, query.png,
offline.png, catalog.png, health.png; fail-<step>.png on a failure) and exits 1 with a message
on the first failure. The server must be fresh: the test creates the stream `clicks` and the
table `per_page`.
"""
import json
import os
import re
import sys
import threading
import time
import traceback
import urllib.request

from playwright.sync_api import sync_playwright

BASE = sys.argv[1].rstrip("/") if len(sys.argv) > 1 else sys.exit("usage: console_test.py BASE_URL OUTDIR")
OUT = sys.argv[2] if len(sys.argv) > 2 else sys.exit("usage: console_test.py BASE_URL OUTDIR")
os.makedirs(OUT, exist_ok=True)
CHROMIUM = os.environ.get("EDDY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 20_000


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def http(path, body=None, content_type="application/json"):
    """A request to the server from the test itself (not through the page)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(BASE + path, data=data, method="GET" if data is None else "POST")
    if data is not None:
        req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    return text


def insert_rows(rows):
    """POST /inserts: the target line, then one JSON object per row."""
    lines = [json.dumps({"target": "clicks"})] + [json.dumps(r) for r in rows]
    text = http("/inserts", ("\n".join(lines) + "\n").encode(), "application/json")
    acks = [json.loads(x) for x in text.splitlines() if x.strip()]
    check(len(acks) == len(rows) and all(a.get("status") == "ok" for a in acks), f"/inserts answered {text!r}")


class Feeder(threading.Thread):
    """Keeps inserting rows (about 50 a second) so that the persistent query has rates to show."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.error = None
        self.sent = 0

    def run(self):
        pages = ["home", "docs", "pricing", "blog", "about"]
        while not self.stop.is_set():
            try:
                insert_rows([{"id": self.sent + i, "page": pages[(self.sent + i) % len(pages)]} for i in range(5)])
                self.sent += 5
            except Exception as e:  # reported by the step that needs the rows
                self.error = e
            self.stop.wait(0.1)


def latest_block(page):
    return page.locator("#results [data-testid=result]").first


def wait_status(block, statuses, what):
    """Waits until a result block's data-status is one of `statuses`; a wrong final status fails."""
    deadline = time.time() + TIMEOUT_MS / 1000
    while time.time() < deadline:
        st = block.get_attribute("data-status")
        if st in statuses:
            return st
        if st not in ("running", None) and st not in statuses:
            raise Failure(f"{what}: status {st!r} ({block.inner_text()[:600]!r})")
        time.sleep(0.1)
    raise Failure(f"{what}: still {block.get_attribute('data-status')!r} after {TIMEOUT_MS} ms: {block.inner_text()[:600]!r}")


def run_sql(page, sql, statuses=("done",), keys=False):
    page.fill("[data-testid=sql-editor]", sql)
    before = page.locator("#results [data-testid=result]").count()
    if keys:
        page.press("[data-testid=sql-editor]", "Control+Enter")
    else:
        page.click("[data-testid=run]")
    page.wait_for_function(f"document.querySelectorAll('#results [data-testid=result]').length > {before}")
    block = latest_block(page)
    wait_status(block, statuses, sql)
    return block


def main():
    if not os.path.exists(CHROMIUM):
        print(f"FAIL launch: no Chromium at {CHROMIUM} (apt-get install chromium, or set EDDY_CHROMIUM)", file=sys.stderr)
        sys.exit(1)
    errors = []
    step = "launch"
    page = None
    feeder = Feeder()
    with sync_playwright() as p:
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        except Exception as e:
            print(f"FAIL launch: Chromium ({CHROMIUM}) did not start: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
        ctx = browser.new_context(viewport={"width": 1360, "height": 900})
        ctx.set_default_timeout(TIMEOUT_MS)
        page = ctx.new_page()
        page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" and "Failed to load resource" not in m.text else None)

        def ok(name):
            check(not errors, "the page reported errors: " + "; ".join(errors))
            print("ok", name, flush=True)

        def shot(name, full=True):
            page.screenshot(path=os.path.join(OUT, name), full_page=full)

        try:
            step = "open console"
            page.goto(BASE + "/")
            page.wait_for_selector("[data-testid=sql-editor]", state="visible")
            check(page.locator("[data-testid=view-editor]").is_visible(), "the editor is not the first view")
            check(page.locator("[data-testid=banner]").is_hidden(), "the unreachable banner shows on a live server")
            ok(step)

            step = "create stream"
            b = run_sql(page, "CREATE STREAM clicks (id INT KEY, page STRING) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=2);")
            check("Stream created" in b.inner_text(), f"no 'Stream created' in {b.inner_text()!r}")
            ok(step)

            step = "syntax error shown with its position"
            b = run_sql(page, "SELECT * FROM clicks\nWHERE id = = 1;", statuses=("error",))
            err = b.locator("[data-testid=error]")
            check(err.count() >= 1 and err.first.inner_text().strip(), "no error message in the failed statement's block")
            pos = b.locator("[data-testid=error-pos]")
            check(pos.count() == 1, f"no position marked for the parser error {err.first.inner_text()!r} (needs 'Line: N, Column: M')")
            check(pos.get_attribute("data-line") == "2", f"error marked at line {pos.get_attribute('data-line')}, expected 2")
            check(b.locator(".stmt .err-line").inner_text().startswith("WHERE"), "the error line is not the one marked")
            ok(step)

            step = "failing statement shows its error"
            b = run_sql(page, "DROP STREAM no_such_stream;", statuses=("error",))
            check("NO_SUCH_STREAM" in b.locator("[data-testid=error]").first.inner_text().upper(), f"unexpected error text {b.inner_text()!r}")
            ok(step)

            step = "push query streams rows"
            b = run_sql(page, "SELECT * FROM clicks EMIT CHANGES;", statuses=("running",))
            page.wait_for_selector("#results [data-testid=result] [data-testid=row-count]")
            # rows through the editor of a second tab
            tab2 = ctx.new_page()
            tab2.on("pageerror", lambda e: errors.append(f"tab 2 page error: {e}"))
            tab2.goto(BASE + "/#/editor")
            run_sql(tab2, "INSERT INTO clicks (id, page) VALUES (1, 'home');\nINSERT INTO clicks (id, page) VALUES (2, 'docs');")
            tab2.close()
            # and through POST /inserts
            insert_rows([{"id": 3, "page": "pricing"}])
            page.wait_for_function("() => { const c = document.querySelector('#results [data-testid=result] [data-testid=row-count]');"
                                   " return c && Number(c.dataset.rows) >= 3; }")
            text = b.locator("[data-testid=result-table]").inner_text()
            for v in ("home", "docs", "pricing"):
                check(v in text, f"row {v!r} missing from the push query's table: {text!r}")
            check(b.get_attribute("data-status") == "running", "the push query is no longer running")
            shot("editor.png")
            ok(step)

            step = "stop push query"
            b.locator("[data-testid=stop]").click()
            wait_status(b, ("stopped",), "stopping the push query")
            deadline = time.time() + 10
            while True:
                qs = json.loads(http("/api/queries"))["queries"]
                if not [q for q in qs if not q["persistent"]]:
                    break
                check(time.time() < deadline, f"the push query still runs on the server after Stop: {qs}")
                time.sleep(0.2)
            ok(step)

            step = "create persistent query"
            b = run_sql(page, "CREATE TABLE per_page AS SELECT page, COUNT(*) AS n FROM clicks GROUP BY page;")
            m = re.search(r"query with ID (\w+)", b.locator("[data-testid=message]").first.inner_text())
            qs = json.loads(http("/api/queries"))["queries"]
            qid = m.group(1) if m else next((q["id"] for q in qs if q["persistent"]), None)
            check(qid, f"no query id in {b.inner_text()!r} nor in /api/queries {qs}")
            feeder.start()
            ok(step)

            step = "queries list"
            page.goto(BASE + "/#/queries")
            row = page.locator(f"[data-testid=query-row][data-id='{qid}']")
            row.wait_for()
            check("RUNNING" in row.inner_text(), f"query row: {row.inner_text()!r}")
            time.sleep(3)
            shot("queries.png")
            ok(step)

            step = "query page graph"
            row.locator("a").first.click()
            page.wait_for_selector("[data-testid=graph] [data-testid=node]")
            kinds = page.eval_on_selector_all("[data-testid=graph] [data-testid=node]", "els => els.map(e => e.dataset.kind)")
            for k in ("Source", "Aggregate", "Sink"):
                check(k in kinds, f"no {k} node in the graph: {kinds}")
            ok(step)

            step = "query page rates"
            check(feeder.error is None, f"inserting rows failed: {feeder.error}")
            page.wait_for_function("() => [...document.querySelectorAll('[data-testid=graph] [data-testid=rate]')]"
                                   ".some(e => Number(e.dataset.value) > 0)")
            nonzero = page.eval_on_selector_all("[data-testid=rate]", "els => els.filter(e => Number(e.dataset.value) > 0).length")
            check(nonzero > 0, "no non-zero rate shown")
            time.sleep(4)  # a few seconds of sparklines
            shot("query.png")
            ok(step)

            step = "pause and resume"
            page.click("[data-testid=pause]")
            page.wait_for_selector("[data-testid=query-page] [data-testid=query-state]:text-is('PAUSED')")
            check(page.locator("[data-testid=resume]").is_enabled(), "Resume is not enabled on a paused query")
            page.click("[data-testid=resume]")
            page.wait_for_selector("[data-testid=query-page] [data-testid=query-state]:text-is('RUNNING')")
            ok(step)

            step = "server unreachable"
            # Every request fails as if the server were gone: the banner shows and rates go stale.
            page.route("**/*", lambda route: route.abort("connectionrefused"))
            banner = page.locator("[data-testid=banner]")
            banner.wait_for(state="visible")
            check(re.search(r"unreachable since \d\d:\d\d:\d\d", banner.inner_text(), re.I), f"banner says {banner.inner_text()!r}")
            live = page.eval_on_selector_all("[data-testid=rate]", "els => els.filter(e => e.dataset.value !== '' || e.textContent !== '—').length")
            check(live == 0, f"{live} rates still shown as live while the server is unreachable")
            errors[:] = [e for e in errors if "ERR_CONNECTION_REFUSED" not in e and "Failed to fetch" not in e]
            shot("offline.png", full=False)
            page.unroute("**/*")
            banner.wait_for(state="hidden")
            page.wait_for_function("() => [...document.querySelectorAll('[data-testid=graph] [data-testid=rate]')]"
                                   ".some(e => Number(e.dataset.value) > 0)")
            ok(step)

            step = "pull query"
            page.goto(BASE + "/#/editor")
            b = run_sql(page, "SELECT * FROM per_page WHERE page = 'home';", keys=True)  # Ctrl+Enter
            rows = b.locator("[data-testid=result-table] tbody tr")
            check(rows.count() == 1 and rows.first.inner_text().startswith("home"), f"pull query result: {b.inner_text()!r}")
            ok(step)

            step = "history"
            page.reload()
            item = page.locator("[data-testid=history-item]", has_text="CREATE STREAM clicks")
            check(item.count() == 1, "the CREATE STREAM is not in the history after a reload")
            item.click()
            check(page.input_value("[data-testid=sql-editor]").startswith("CREATE STREAM clicks"), "clicking a history item does not put it in the editor")
            ok(step)

            step = "catalog"
            page.goto(BASE + "/#/catalog")
            page.wait_for_selector("[data-testid=catalog-item][data-kind=stream][data-name=CLICKS]")
            page.wait_for_selector("[data-testid=catalog-item][data-kind=table][data-name=PER_PAGE]")
            page.click("[data-testid=catalog-item][data-kind=stream][data-name=CLICKS]")
            schema = page.locator("[data-testid=schema] table")
            schema.wait_for()
            check("PAGE" in schema.inner_text() and "ID" in schema.inner_text(), f"schema of CLICKS: {schema.inner_text()!r}")
            page.click("[data-testid=catalog-item][data-kind=topic][data-name=clicks]")
            parts = page.locator("[data-testid=topic-partitions] table")
            parts.wait_for()
            check(parts.locator("tbody tr").count() == 2, f"clicks should show 2 partitions: {parts.inner_text()!r}")
            page.click("[data-testid=tail]")
            page.wait_for_function("() => { const c = document.querySelector('[data-testid=catalog-detail] [data-testid=row-count]');"
                                   " return c && Number(c.dataset.rows) > 0; }")
            shot("catalog.png")
            page.click("[data-testid=catalog-detail] [data-testid=stop]")
            wait_status(page.locator("[data-testid=catalog-detail] [data-testid=result]"), ("stopped",), "stopping the live tail")
            ok(step)

            step = "health"
            page.goto(BASE + "/#/health")
            page.wait_for_selector("[data-testid=checkpoint-epoch]")
            check(page.locator("[data-testid=backend]").inner_text().strip() != "", "no backend shown")
            shot("health.png")
            ok(step)
        except Exception as e:
            msg = str(e) if isinstance(e, Failure) else "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {step}: {msg}", file=sys.stderr, flush=True)
            if errors:
                print("page errors: " + "; ".join(errors), file=sys.stderr)
            try:
                page.screenshot(path=os.path.join(OUT, "fail-" + re.sub(r"\W+", "-", step) + ".png"), full_page=True)
            except Exception:
                pass
            feeder.stop.set()
            browser.close()
            sys.exit(1)
        feeder.stop.set()
        browser.close()
    print("ok all", flush=True)


if __name__ == "__main__":
    main()

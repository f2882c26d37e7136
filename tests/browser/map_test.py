#!/usr/bin/python3
"""The map at `/`, driven in headless Chromium through chromedriver (Selenium).

A master reads a simulated cluster (`cluster-insight simulate`) on loopback; the browser
loads the map and is used as a person would: it must render without console errors, find
a pod by name and by label, hide a namespace, open a resource's properties on a click,
show a change made in the cluster (a pod labelled through the Kubernetes API) without a
reload, and step back to before it. Then the 3,000-pod demo is loaded, timed, searched and
clicked. Screenshots go to the directory given.

Usage: map_test.py BINARY SCREENSHOT_DIR
Prints PASS:/FAIL: lines, and TIME: lines with what was measured.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

FAILED = 0


def report(ok, what, detail=""):
    global FAILED
    if ok:
        print(f"PASS: {what}", flush=True)
    else:
        FAILED += 1
        print(f"FAIL: {what}" + (f" -- {detail}" if detail else ""), flush=True)
    return ok


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, timeout, step=0.2):
    """The first true value of what() within timeout seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = what()
        except WebDriverException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


class Processes:
    """The programs the test started, stopped at its end."""

    def __init__(self):
        self.running = []

    def start(self, args, log):
        p = subprocess.Popen(args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.running.append(p)
        return p

    def stop(self):
        for p in reversed(self.running):
            p.terminate()
        for p in self.running:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def wait_ready(url, timeout):
    def ready():
        try:
            return http("GET", url + "/readyz")[0] == 200
        except OSError:
            return False

    return wait_for(ready, timeout, 0.5)


def browser(user_data):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1600,1000", f"--user-data-dir={user_data}",
    ]:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(60)
    return driver


def console_errors(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def load_map(driver, url, timeout):
    """Loads the map; returns the page's own timings once it is drawn and laid out."""
    started = time.monotonic()
    driver.get(url + "/")
    laid_out = wait_for(
        lambda: driver.execute_script("return document.body.dataset.layoutMs"), timeout, 0.1)
    if not laid_out:
        return None
    timings = driver.execute_script(
        "const d = document.body.dataset; const nav = performance.getEntriesByType('navigation')[0];"
        "return {load: +d.loadMs, draw: +d.drawMs, layout: +d.layoutMs, ready: +d.readyMs,"
        " domReady: Math.round(nav.domContentLoadedEventEnd),"
        " drawn: window.clusterInsight.cy.nodes().length}")
    timings["wall"] = round((time.monotonic() - started) * 1000)
    return timings


def drawn_ids(driver, selector="node"):
    return set(driver.execute_script(
        "return window.clusterInsight.cy.nodes(arguments[0]).map((n) => n.id())", selector))


def click_resource(driver, rid):
    """Clicks where the resource is drawn on the map's canvas, as a person would."""
    driver.execute_script(
        "const cy = window.clusterInsight.cy; const n = cy.getElementById(arguments[0]);"
        "cy.zoom(1.5); cy.center(n);", rid)
    time.sleep(0.3)
    x, y = driver.execute_script(
        "const p = window.clusterInsight.cy.getElementById(arguments[0]).renderedPosition();"
        "return [p.x, p.y]", rid)
    canvas = driver.find_element(By.ID, "map")
    size = canvas.size
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(x - size["width"] / 2), int(y - size["height"] / 2)).click().perform()


def search(driver, text):
    box = driver.find_element(By.ID, "search")
    box.clear()
    box.send_keys(text)


def simulated_master(binary, work, procs, name, master_args):
    """A simulated cluster and a master of it: (the master's URL, the simulator's Kubernetes
    API URL) once the master is ready, else None."""
    kube_port, master_port = free_port(), free_port()
    sim_log = os.path.join(work, f"simulate-{name}.log")
    procs.start([binary, "simulate", "--port", str(kube_port)], sim_log)
    started = wait_for(lambda: open(sim_log).read().count("\n") >= 2, 30)
    lines = open(sim_log).read().split("\n")
    if not report(started, f"the simulator starts ({name})", "".join(lines)):
        return None
    kube_url = lines[0].split()[1]
    url = f"http://127.0.0.1:{master_port}"
    procs.start([binary, "--kubernetes-url", kube_url, "--docker-port", lines[1].split()[1],
                 "--port", str(master_port)] + master_args,
                os.path.join(work, f"master-{name}.log"))
    if not report(wait_ready(url, 60), f"the master is ready ({name})"):
        return None
    return url, kube_url


def small_cluster(binary, work, shots, procs, driver):
    started = simulated_master(binary, work, procs, "open", [
        "--no-auth", "--cluster-name", "map-test", "--refresh-interval", "1"])
    if not started:
        return
    url, kube_url = started

    timings = load_map(driver, url, 60)
    if not report(timings, "the map renders"):
        return
    print("TIME: demo size: " + json.dumps(timings), flush=True)
    graph = json.loads(http("GET", url + "/cluster")[1])
    pods = [r for r in graph["resources"] if r["type"] == "Pod"]
    report(drawn_ids(driver, '[type = "Pod"]') == {p["id"] for p in pods},
           "every pod is drawn", f"{len(pods)} pods")
    folded = drawn_ids(driver, '[type = "Process"], [type = "Container"], [type = "Image"]')
    report(not folded, "containers, processes and images are folded at first", str(folded))
    errors = console_errors(driver)
    report(not errors, "no console errors", json.dumps(errors))
    driver.save_screenshot(os.path.join(shots, "map.png"))

    # Search by name, then by label.
    pod = next(p for p in pods if p["properties"]["metadata"].get("ownerReferences"))
    pid, name = pod["id"], pod["properties"]["metadata"]["name"]
    search(driver, name)
    found = wait_for(lambda: driver.find_elements(
        By.CSS_SELECTOR, f'#search-results button[data-id="{pid}"]'), 5)
    report(found, "search by name lists the pod", name)
    report(driver.execute_script(
        "return window.clusterInsight.cy.getElementById(arguments[0]).hasClass('match')", pid),
        "search by name marks the pod on the map")
    key, value = next(iter(pod["properties"]["metadata"]["labels"].items()))
    expected = {r["id"] for r in graph["resources"]
                if (r["properties"].get("metadata") or {}).get("labels", {}).get(key) == value}
    search(driver, f"{key}={value}")
    listed = lambda: {b.get_attribute("data-id") for b in driver.find_elements(
        By.CSS_SELECTOR, "#search-results button")}
    report(wait_for(lambda: listed() == expected, 5), f"search by label {key}={value} lists what has it",
           f"{listed()} != {expected}")
    driver.find_element(By.ID, "search").send_keys(Keys.ESCAPE)
    report(wait_for(lambda: not driver.execute_script(
        "return window.clusterInsight.cy.nodes('.match').length"), 5), "Escape clears the search")

    # A namespace hidden, then shown again.
    namespaces = sorted({p["properties"]["metadata"]["namespace"] for p in pods})
    hidden = namespaces[-1]
    box = driver.find_element(By.CSS_SELECTOR, f'input[data-filter="ns"][value="{hidden}"]')
    box.click()
    in_hidden = {p["id"] for p in pods if p["properties"]["metadata"]["namespace"] == hidden}
    others = {p["id"] for p in pods} - in_hidden
    shown_pods = wait_for(lambda: (lambda d: d if not d & in_hidden else None)(
        drawn_ids(driver, '[type = "Pod"]')), 5)
    report(shown_pods == others, f"unticking namespace {hidden} hides its pods and only them",
           str(shown_pods))
    box.click()
    report(wait_for(lambda: drawn_ids(driver, '[type = "Pod"]') == others | in_hidden, 5),
           f"ticking {hidden} again draws them again")

    # A click on the pod opens its properties, relations and owner chain.
    click_resource(driver, pid)
    title = wait_for(lambda: (lambda d: d.text if d.is_displayed() and name in d.text else None)(
        driver.find_element(By.ID, "details-title")), 5)
    report(title, "a click on the pod opens its panel", str(title))
    body = driver.find_element(By.ID, "details-body").text
    report("metadata" in body and pod["properties"]["metadata"]["uid"] in body,
           "the panel shows the pod's properties")
    owner = pod["properties"]["metadata"]["ownerReferences"][0]
    chain = driver.find_elements(By.CSS_SELECTOR, "#owner-chain button")
    report(any(owner["name"] in b.text for b in chain) and any(name in b.text for b in chain),
           "the owner chain names the pod's owner", " / ".join(b.text for b in chain))
    related = driver.find_elements(By.CSS_SELECTOR, "#relations button")
    report(len(related) >= 2, "the panel lists the pod's relations as links", str(len(related)))
    driver.save_screenshot(os.path.join(shots, "map-pod.png"))

    # Unfolded: the pod's containers drawn inside it, with their status.
    containers = [r["target"] for r in graph["relations"]
                  if r["type"] == "contains" and r["source"] == pid]
    driver.find_element(By.ID, "unfold").click()
    report(wait_for(lambda: set(containers) <= drawn_ids(driver, '[type = "Container"]'), 5),
           "unfolding the pod draws its containers", str(containers))
    drawn = driver.execute_script(
        "return arguments[0].map((id) => { const n = window.clusterInsight.cy.getElementById(id);"
        " return [n.data('parent'), n.data('status') || null]; })", containers)
    report(containers and all(parent == pid for parent, _ in drawn),
           "inside the pod", json.dumps(drawn))
    report(all(status for _, status in drawn), "each with its status", json.dumps(drawn))
    driver.find_element(By.ID, "unfold").click()
    report(wait_for(lambda: not drawn_ids(driver, '[type = "Container"]'), 5), "folded again")

    # Grouped by namespace, then by node again.
    node = next(r["source"] for r in graph["relations"] if r["type"] == "runs" and r["target"] == pid)
    parent = lambda: driver.execute_script(
        "return window.clusterInsight.cy.getElementById(arguments[0]).data('parent')", pid)
    Select(driver.find_element(By.ID, "group-by")).select_by_value("Namespace")
    report(wait_for(lambda: parent() == "Namespace:" + pod["properties"]["metadata"]["namespace"], 10),
           "grouped by namespace, the pod is inside its namespace", str(parent()))
    # Objects that stay drawn across the change of grouping move into their namespaces too.
    kept = [r for r in graph["resources"] if r["type"] in ("Service", "ReplicaSet", "Deployment")]
    parents = lambda: driver.execute_script(
        "return arguments[0].map((id) => window.clusterInsight.cy.getElementById(id).data('parent'))",
        [r["id"] for r in kept])
    expected_parents = ["Namespace:" + r["properties"]["metadata"]["namespace"] for r in kept]
    report(kept and wait_for(lambda: parents() == expected_parents, 10),
           "and so are its services and workloads", f"{parents()} != {expected_parents}")
    Select(driver.find_element(By.ID, "group-by")).select_by_value("Node")
    report(wait_for(lambda: parent() == node, 10), "grouped by node, inside its node", str(parent()))

    # A change in the cluster, seen without a reload.
    driver.execute_script("window.notReloaded = true")
    namespace = pod["properties"]["metadata"]["namespace"]
    status, answer = http(
        "PATCH", f"{kube_url}/api/v1/namespaces/{namespace}/pods/{name}",
        json.dumps({"metadata": {"labels": {"map-test": "changed"}}}).encode(),
        {"Content-Type": "application/merge-patch+json"})
    report(status == 200, "the pod is labelled through the Kubernetes API", f"{status} {answer[:200]}")
    seen = wait_for(lambda: "map-test=changed" in driver.find_element(By.ID, "details-body").text, 30)
    report(seen, "the open panel shows the new label without a reload")
    report(driver.execute_script("return window.notReloaded === true"), "the page was not reloaded")
    listed = lambda: [li for li in driver.find_elements(By.CSS_SELECTOR, "#changes li")
                      if li.find_elements(By.CSS_SELECTOR, f'button.ref[data-id="{pid}"]')]
    change = wait_for(listed, 5)
    report(change, "the change is listed", " | ".join(
        li.text for li in driver.find_elements(By.CSS_SELECTOR, "#changes li")))
    driver.save_screenshot(os.path.join(shots, "map-change.png"))

    # Back to just before the change: the label is not there; then live again.
    if not change:
        return
    change[0].find_element(By.CSS_SELECTOR, "button.link").click()
    past = wait_for(lambda: driver.find_element(By.ID, "live").text == "past", 10)
    report(past, "the graph from before the change is shown",
           driver.find_element(By.ID, "error").text + " " + json.dumps(driver.get_log("browser")))
    labels = driver.execute_script(
        "const r = window.clusterInsight.shown.resources.get(arguments[0]);"
        "return r && r.properties.metadata.labels", pid)
    report(labels is not None and "map-test" not in labels, "before the change, the pod has no such label",
           json.dumps(labels))
    report(driver.execute_script(
        "return window.clusterInsight.cy.getElementById(arguments[0]).hasClass('changed-since')", pid),
        "the map marks the pod as changed since")
    driver.find_element(By.ID, "back-to-live").click()
    report(wait_for(lambda: driver.find_element(By.ID, "live").text == "live", 5), "back to live")
    errors = console_errors(driver)
    report(not errors, "no console errors after all that", json.dumps(errors))


def guarded_master(binary, work, procs, driver):
    """A master that asks for a token: the page asks for one, then draws the graph with it."""
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write("map-test-token\n")
    started = simulated_master(binary, work, procs, "guarded", [
        "--auth-token-file", token_file, "--bind", "127.0.0.1"])
    if not started:
        return
    url, _ = started
    report(http("GET", url + "/cluster")[0] == 401, "it refuses /cluster without a token")
    driver.get(url + "/")
    dialog = wait_for(lambda: driver.execute_script(
        "return document.getElementById('token-dialog').open"), 10)
    report(dialog, "the page asks for a token")
    driver.find_element(By.ID, "token").send_keys("map-test-token")
    driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
    report(wait_for(lambda: driver.execute_script("return document.body.dataset.layoutMs"), 30),
           "with it, the map is drawn")
    pods = json.loads(http("GET", url + "/cluster", headers={
        "Authorization": "Bearer map-test-token"})[1])
    expected = {r["id"] for r in pods["resources"] if r["type"] == "Pod"}
    report(drawn_ids(driver, '[type = "Pod"]') == expected, "every pod is drawn")
    report(wait_for(lambda: driver.find_element(By.ID, "live").text == "live", 10),
           "and it follows the change stream with the token", driver.find_element(By.ID, "live").text)
    # The browser reports the refusal that made the page ask; nothing else.
    errors = [e for e in console_errors(driver) if "/cluster - " not in e["message"] or "401" not in e["message"]]
    report(not errors, "no console errors but the first refusal", json.dumps(errors))


def large_cluster(binary, work, shots, procs, driver):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs.start([binary, "demo", "--port", str(port), "--size", "nodes=100,pods-per-node=30"],
                os.path.join(work, "demo-3000.log"))
    if not report(wait_ready(url, 300), "the 3,000-pod demo is ready"):
        return
    # A bound on failure, not a measure: the numbers are printed.
    timings = load_map(driver, url, 300)
    if not report(timings, "the map renders 3,000 pods"):
        return
    print("TIME: 3,000 pods: " + json.dumps(timings), flush=True)
    driver.save_screenshot(os.path.join(shots, "map-3000.png"))
    pods = drawn_ids(driver, '[type = "Pod"]')
    report(len(pods) >= 3000, "all 3,000 pods are drawn", str(len(pods)))
    target = sorted(pods)[1234]
    name = target.split("/", 1)[1]
    started = time.monotonic()
    search(driver, name)
    found = wait_for(lambda: driver.find_elements(
        By.CSS_SELECTOR, f'#search-results button[data-id="{target}"]'), 30, 0.05)
    report(found, "search finds one pod among 3,000")
    print(f"TIME: 3,000 pods: search answered in {round((time.monotonic() - started) * 1000)} ms "
          "(150 ms of it is the typing pause)", flush=True)
    started = time.monotonic()
    found[0].click()
    opened = wait_for(lambda: name in driver.find_element(By.ID, "details-title").text, 30, 0.05)
    report(opened, "choosing it opens its panel")
    print(f"TIME: 3,000 pods: panel opened in {round((time.monotonic() - started) * 1000)} ms "
          f"(drawing again {driver.execute_script('return document.body.dataset.drawMs')} ms, "
          f"of which choosing what to draw {driver.execute_script('return document.body.dataset.wantedMs')} ms)",
          flush=True)
    errors = console_errors(driver)
    report(not errors, "no console errors at 3,000 pods", json.dumps(errors))


def main():
    binary, shots = sys.argv[1], sys.argv[2]
    os.makedirs(shots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="map-test.")
    procs = Processes()
    driver = None
    try:
        driver = browser(os.path.join(work, "chromium"))
        small_cluster(binary, work, shots, procs, driver)
        guarded_master(binary, work, procs, driver)
        large_cluster(binary, work, shots, procs, driver)
    except Exception as e:  # the failure is the finding; say what it was
        report(False, "the test ran to its end", repr(e))
    finally:
        if driver:
            driver.quit()
        procs.stop()
        if FAILED:
            for log in sorted(os.listdir(work)):
                if log.endswith(".log"):
                    print(f"--- {log} (last lines)")
                    print("".join(open(os.path.join(work, log)).readlines()[-15:]))
        shutil.rmtree(work, ignore_errors=True)
    print(f"screenshots: {shots}")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()

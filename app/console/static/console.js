// Progressive enhancement of the console: live run progress without reloading, and
// confirmations on forms that ask for one. Every page works without this file.
"use strict";

(function () {
  const FINAL = ["succeeded", "failed", "cancelled"];
  const POLL_MS = 1000;

  function badge(status) {
    const span = document.createElement("span");
    span.className = "badge badge-" + status;
    span.textContent = status.replace("_", " ");
    return span;
  }

  function setText(root, selector, text) {
    const node = root.querySelector(selector);
    if (node && node.textContent !== text) node.textContent = text;
  }

  function setBadge(root, selector, status) {
    const node = root.querySelector(selector);
    if (!node) return;
    node.replaceChildren(badge(status));
  }

  function when(value) {
    return value ? value.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z") : "";
  }

  function totals(run) {
    let done = 0, total = 0;
    for (const name in run.streams) {
      done += run.streams[name].units_done;
      total += run.streams[name].units_total;
    }
    return [done, total];
  }

  function setProgress(node, run) {
    if (!node) return;
    const [done, total] = totals(run);
    node.max = total || 1;
    node.value = done;
  }

  async function fetchRun(id) {
    const answer = await fetch("/console/runs/" + encodeURIComponent(id) + ".json", {
      credentials: "same-origin", headers: { "Accept": "application/json" },
    });
    if (answer.status === 401) {
      const body = await answer.json().catch(() => ({}));
      window.location.assign(body.location || "/console/expired");
      return null;
    }
    return answer.ok ? answer.json() : null;
  }

  function updateStreams(page, run) {
    const body = page.querySelector("#streams tbody");
    if (!body) return;
    for (const name of Object.keys(run.streams).sort()) {
      const s = run.streams[name];
      let row = body.querySelector('tr[data-stream="' + CSS.escape(name) + '"]');
      if (!row) {
        const empty = body.querySelector("tr.empty");
        if (empty) empty.remove();
        row = document.createElement("tr");
        row.dataset.stream = name;
        const cols = ["name", "status", "records_read", "records_written", "records_deleted",
          "records_skipped", "requests", "units", "duration_seconds", "notes"];
        for (const col of cols) {
          const cell = document.createElement("td");
          if (col === "name") cell.textContent = name; else cell.dataset.col = col;
          if (!["name", "status", "notes"].includes(col)) cell.className = "num";
          row.appendChild(cell);
        }
        body.appendChild(row);
      }
      setBadge(row, '[data-col="status"]', s.status);
      for (const col of ["records_read", "records_written", "records_deleted", "records_skipped", "requests"]) {
        setText(row, '[data-col="' + col + '"]', String(s[col]));
      }
      setText(row, '[data-col="units"]', s.units_done + "/" + s.units_total);
      setText(row, '[data-col="duration_seconds"]', s.duration_seconds + " s");
      const notes = [s.error || "", s.delete_guard ? "delete guard: " + s.delete_guard : "", s.note || ""];
      setText(row, '[data-col="notes"]', notes.filter(Boolean).join(" "));
    }
  }

  function updateRunPage(page, run) {
    setBadge(page, '[data-field="status"]', run.status);
    setText(page, '[data-field="started_at"]', when(run.started_at));
    setText(page, '[data-field="finished_at"]', when(run.finished_at));
    setText(page, '[data-field="duration_seconds"]', run.duration_seconds == null ? "" : run.duration_seconds + " s");
    setText(page, '[data-field="records"]', String(run.records));
    setText(page, '[data-field="requests"]', String(run.requests));
    setProgress(page.querySelector('[data-field="progress"]'), run);
    const errorBox = page.querySelector('[data-field="error-box"]');
    if (errorBox) {
      errorBox.hidden = !run.error;
      setText(errorBox, '[data-field="error"]', run.error || "");
    }
    updateStreams(page, run);
    page.dataset.status = run.status;
    if (FINAL.includes(run.status)) {
      const live = page.querySelector('[data-field="live"]');
      if (live) live.hidden = true;
      const cancel = page.querySelector("#cancel-run");
      if (cancel) cancel.closest("form").hidden = true;
    }
  }

  function updateRunRow(row, run) {
    setBadge(row, '[data-field="status"]', run.status);
    setText(row, '[data-field="records"]', String(run.records));
    setText(row, '[data-field="requests"]', String(run.requests));
    setText(row, '[data-field="duration"]', run.duration_seconds == null ? "" : run.duration_seconds + " s");
    setProgress(row.querySelector('[data-field="progress"] progress'), run);
    row.dataset.status = run.status;
  }

  function poll(id, apply) {
    const tick = async () => {
      const run = await fetchRun(id).catch(() => null);
      if (run) apply(run);
      if (!run || !FINAL.includes(run.status)) window.setTimeout(tick, POLL_MS);
    };
    window.setTimeout(tick, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector("[data-run-page]");
    if (page && page.dataset.active === "yes") {
      poll(page.dataset.runPage, (run) => updateRunPage(page, run));
    }
    for (const row of document.querySelectorAll("[data-live-runs] tr[data-run]")) {
      if (!FINAL.includes(row.dataset.status)) {
        poll(row.dataset.run, (run) => updateRunRow(row, run));
      }
    }
    for (const form of document.querySelectorAll("form[data-confirm]")) {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    }
    for (const link of document.querySelectorAll("a[data-back]")) {
      link.addEventListener("click", (event) => {
        if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
      });
    }
  });
})();

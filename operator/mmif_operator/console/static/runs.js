"use strict";
(async () => {
  const { h, api, header, showMessage, bar, phaseBadge, live, when } = Console;
  const ns = await header("runs");
  if (!ns) { showMessage("Choose a namespace above.", "info"); return; }
  document.getElementById("title-ns").textContent = "in " + ns;
  const runs = new Map();
  const table = document.getElementById("runs");
  const tbody = table.querySelector("tbody");

  function row(r) {
    const href = `/run?ns=${encodeURIComponent(ns)}&name=${encodeURIComponent(r.name)}`;
    return h("tr", { "data-run": r.name },
      h("td", {}, h("a", { href, class: "run-link" }, r.name)),
      h("td", {}, r.pipeline || ""),
      h("td", {}, phaseBadge(r.phase), r.succeeded && r.succeeded.reason && r.succeeded.reason !== r.phase
        ? h("div", { class: "muted" }, r.succeeded.reason) : null),
      h("td", { class: "progress" }, bar("overall", r.overall, "overall"), r.steps.map((s) => bar(s.name, s))),
      h("td", { class: "muted" }, when(r.created)));
  }

  function render() {
    const list = [...runs.values()].sort((a, b) => (b.created || "").localeCompare(a.created || "") || a.name.localeCompare(b.name));
    tbody.replaceChildren(...list.map(row));
    table.hidden = list.length === 0;
    document.getElementById("empty").hidden = list.length !== 0;
  }

  function deny(message) {
    runs.clear();
    tbody.replaceChildren();
    table.hidden = true;
    document.getElementById("empty").hidden = true;
    showMessage(message);
  }

  const first = await api(`/api/namespaces/${encodeURIComponent(ns)}/runs`);
  if (!first.ok) { deny(first.body.error || `Error ${first.status}`); return; }
  for (const r of first.body.runs) runs.set(r.name, r);
  render();

  live(`/api/namespaces/${encodeURIComponent(ns)}/stream`, {
    snapshot: (d) => { runs.clear(); for (const r of d.runs) runs.set(r.name, r); showMessage(""); render(); },
    run: (r) => { runs.set(r.name, r); render(); },
    deleted: (d) => { runs.delete(d.name); render(); },
    denied: (d) => deny(d.message),
  });
})();

"use strict";
(async () => {
  const { h, api, header, showMessage } = Console;
  const ns = await header("pipelines");
  if (!ns) { showMessage("Choose a namespace above.", "info"); return; }
  document.getElementById("title-ns").textContent = "in " + ns;
  const table = document.getElementById("pipelines");

  function cond(c, fallback) {
    return c && c.status ? c : { status: "Unknown", reason: fallback, message: "" };
  }

  async function load() {
    const r = await api(`/api/namespaces/${encodeURIComponent(ns)}/pipelines`);
    if (!r.ok) { table.hidden = true; showMessage(r.body.error || `Error ${r.status}`); return; }
    showMessage("");
    const list = r.body.pipelines.sort((a, b) => a.name.localeCompare(b.name));
    table.querySelector("tbody").replaceChildren(...list.map((p) => {
      const ready = cond(p.ready, "NotReported");
      const extra = [];
      if (p.stalled && p.stalled.status === "True") extra.push(h("div", { class: "ready-False" }, `Stalled: ${p.stalled.reason}`));
      if (p.reconciling && p.reconciling.status === "True") extra.push(h("div", { class: "muted" }, `Reconciling: ${p.reconciling.reason}`));
      return h("tr", { "data-pipeline": p.name },
        h("td", {}, p.name),
        h("td", {}, h("span", { class: "ready-" + ready.status }, ready.status === "True" ? "Ready" : "Not ready"),
          ready.reason ? h("div", { class: "muted" }, ready.reason + (ready.message ? ": " + ready.message : "")) : null, extra),
        h("td", {}, p.steps.map((s) => h("span", { class: "step-chip " + (s.ready ? "ready" : "not-ready"),
          title: [s.mode, s.image || s.url].filter(Boolean).join(" · ") },
          `${s.name} (${s.mode}${s.replicas != null ? `, ${s.readyReplicas || 0}/${s.replicas}` : ""}): ${s.ready ? "ready" : "not ready"}`,
          (s.alternatives || []).length ? h("span", { class: "muted alternatives" },
            " or " + s.alternatives.map((a) => `${a.name} (${a.image || a.url}${a.ready ? "" : ", not ready"})`).join(", ")) : null))),
        h("td", {}, p.reviewRequired ? "required" : ""));
    }));
    table.hidden = list.length === 0;
    document.getElementById("empty").hidden = list.length !== 0;
  }
  document.getElementById("refresh").addEventListener("click", load);
  await load();
})();

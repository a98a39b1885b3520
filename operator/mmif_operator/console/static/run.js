"use strict";
(async () => {
  const { h, api, params, header, showMessage, bar, phaseBadge, live, when } = Console;
  const ns = await header("runs");
  const name = params.get("name");
  if (!ns || !name) { showMessage("No run named in the address (/run?ns=NAMESPACE&name=RUN)."); return; }
  document.title = `${name} · mmif console`;
  document.getElementById("run-name").textContent = name;
  const base = `/api/namespaces/${encodeURIComponent(ns)}/runs/${encodeURIComponent(name)}`;
  const $ = (id) => document.getElementById(id);

  function reviewMessage(text, kind) {
    const el = $("review-message");
    el.className = "message " + (kind || "error");
    el.textContent = text || "";
    el.hidden = !text;
  }

  function renderReview(r) {
    const rv = r.review;
    $("review").hidden = !rv.required;
    if (!rv.required) return;
    const state = $("review-state");
    if (rv.decision) {
      const verb = rv.decision === "Pass" ? "Passed" : "Failed";
      state.replaceChildren(h("p", { id: "review-decision" },
        h("strong", {}, verb), " by ", h("strong", { class: "reviewer" }, rv.reviewer || "?"),
        rv.decidedAt ? ` at ${when(rv.decidedAt)}` : "", rv.comment ? `: “${rv.comment}”` : ""));
      $("review-form").hidden = true;
    } else if (r.phase === "AwaitingReview") {
      state.replaceChildren(h("p", {}, "This run awaits your review",
        rv.deadline ? ` (until ${when(rv.deadline)}, then it fails with ReviewTimeout)` : "", "."));
      $("review-form").hidden = false;
    } else {
      state.replaceChildren(h("p", { class: "muted" },
        ["Succeeded", "Failed", "Cancelled"].includes(r.phase) ? "Ended without a review decision."
          : "The run awaits a review once its items are done and its manifest is written."));
      $("review-form").hidden = true;
    }
  }

  function render(r) {
    $("run").hidden = false;
    $("run-phase").replaceChildren(phaseBadge(r.phase));
    const bits = [`Pipeline ${r.pipeline}`];
    if (r.requester) bits.push(`requested by ${r.requester}`);
    if (r.startTime) bits.push(`started ${when(r.startTime)}`);
    if (r.completionTime) bits.push(`ended ${when(r.completionTime)}`);
    if (r.outputPath) bits.push(`outputs in ${r.outputPath}`);
    $("summary").textContent = bits.join(" · ");
    const c = r.succeeded || {};
    $("condition").replaceChildren(c.reason ? h("p", { id: "condition-text" }, h("strong", {}, c.reason), c.message ? `: ${c.message}` : "") : "");
    $("bars").replaceChildren(bar("overall", r.overall, "overall"), ...r.steps.map((s) => bar(s.name, s)));
    renderReview(r);
    $("items-note").textContent = r.itemsNote || "";
    $("items-note").hidden = !r.itemsNote;
    $("items").querySelector("tbody").replaceChildren(...r.items.map((it) => h("tr", { "data-index": it.index },
      h("td", {}, it.index), h("td", {}, it.item),
      h("td", { class: "state-" + it.state }, it.state), h("td", {}, it.step || ""),
      h("td", {}, it.reason || ""), h("td", {}, it.message || ""),
      h("td", {}, h("button", { type: "button", class: "mmif", onclick: () => openMmif(it.index) }, "MMIF")))));
    $("conditions").querySelector("tbody").replaceChildren(...r.conditions.map((k) => h("tr", {},
      h("td", {}, k.type), h("td", {}, k.status), h("td", {}, k.reason || ""), h("td", {}, k.message || ""),
      h("td", { class: "muted" }, when(k.lastTransitionTime)))));
  }

  async function openMmif(index) {
    const viewer = $("mmif-viewer");
    const res = await api(`${base}/items/${index}/mmif`);
    viewer.hidden = false;
    viewer.replaceChildren(h("h2", {}, `Item ${index}: MMIF`), h("p", { class: "muted" }, res.body.error || ""));
  }

  $("review-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const decision = e.submitter && e.submitter.value;
    const comment = $("review-comment").value;
    for (const b of e.target.querySelectorAll("button")) b.disabled = true;
    reviewMessage("Sending…", "info");
    const res = await api(`${base}/review`, { json: { decision, comment } });
    for (const b of e.target.querySelectorAll("button")) b.disabled = false;
    if (!res.ok) { reviewMessage(res.body.error || `Refused (${res.status})`); return; }
    reviewMessage(decision === "Pass" ? "Passed: the run publishes its outputs." : "Failed: the run ends Failed.", "ok");
    render(res.body);
  });

  const first = await api(base);
  if (!first.ok) { showMessage(first.body.error || `Error ${first.status}`); return; }
  render(first.body);

  live(`/api/namespaces/${encodeURIComponent(ns)}/stream?run=${encodeURIComponent(name)}`, {
    snapshot: (d) => { if (d.run) render(d.run); else showMessage(`PipelineRun ${name} no longer exists.`); },
    run: render,
    deleted: () => showMessage(`PipelineRun ${name} was deleted.`),
    denied: (d) => { $("run").hidden = true; showMessage(d.message); },
  });
})();

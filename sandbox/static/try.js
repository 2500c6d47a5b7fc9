// The try-it page: acts as an EHR against this service. Plain JavaScript, no build step.
// Safety rule: text from a response is set with textContent; the one exception, card detail
// markdown, goes through renderMarkdown() (markdown-it with raw HTML disabled).
"use strict";

const INDICATOR_LABEL = { info: "Info", warning: "Warning", critical: "Critical" };
const ORDER_HOOKS = new Set(["order-select", "order-sign"]);

const $ = (id) => document.getElementById(id);
let patientsById = new Map();
let lastServiceId = null; // feedback goes to the service that returned the cards

// ------------------------------------------------------------------ markdown

// markdown-it (vendored, static/markdown-it.min.js) with raw HTML OFF: any HTML in a card shows as
// text. Its link validation refuses javascript:, vbscript:, file: and data: URLs; links open in a
// new tab without access to this page.
const markdown = window.markdownit({ html: false, linkify: false, typographer: false });
const defaultLinkOpen = markdown.renderer.rules.link_open ||
  ((tokens, idx, options, env, self) => self.renderToken(tokens, idx, options));
markdown.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  tokens[idx].attrSet("target", "_blank");
  tokens[idx].attrSet("rel", "noopener noreferrer");
  return defaultLinkOpen(tokens, idx, options, env, self);
};

function renderMarkdown(source) {
  return markdown.render(source || "");
}

// ------------------------------------------------------------------ DOM helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "className") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child); // strings become text nodes
  }
  return node;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url, window.location.href);
    return ["http:", "https:"].includes(parsed.protocol) ? parsed.href : null;
  } catch (e) {
    return null;
  }
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
  status.setAttribute("role", isError ? "alert" : "status");
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// ------------------------------------------------------------------ data from the service

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(describeFailure(response, body));
  return { body, response };
}

function describeFailure(response, body) {
  const issues = (body && body.issue) || [];
  const text = issues.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean).join("; ");
  return `HTTP ${response.status}${text ? ": " + text : ""}`;
}

async function loadChoices() {
  let patients;
  try {
    patients = (await getJson("/try/patients")).body.patients;
  } catch (error) {
    setStatus(`Cannot list the synthetic patients (${error.message}). Is SPINECDS_TRY_PAGE=true?`, true);
    return;
  }
  const select = $("patient");
  for (const p of patients) {
    patientsById.set(p.id, p);
    const firstLine = p.story.split(/(?<=\.)\s/)[0];
    select.append(el("option", { value: p.id }, `${p.id} - ${p.gender}, ${p.age}: ${firstLine}`));
  }
  try {
    const orders = (await getJson("/try/orders")).body.orders;
    for (const order of orders) {
      $("order").append(el("option", { value: order.id }, `${order.text} (${order.priority || "no priority"}; ${order.id})`));
    }
  } catch (error) {
    setStatus(`Sample orders unavailable (${error.message}); the default MRI order is used.`, true);
  }
  showPatient();
}

function showPatient() {
  const p = patientsById.get($("patient").value);
  $("story").textContent = p ? p.story : "";
  $("expected").textContent = p ? "Expected cards: " + (p.expectedCards.join("; ") || "none") : "";
}

function syncOrderField() {
  const isOrderHook = ORDER_HOOKS.has($("hook").value);
  $("order").disabled = !isOrderHook;
}

// ------------------------------------------------------------------ sending

async function send(event) {
  event.preventDefault();
  const patient = $("patient").value;
  const hook = $("hook").value;
  if (!patient) return;
  const button = $("send");
  button.disabled = true;
  setStatus("Building the request from the synthetic record...");
  try {
    const params = new URLSearchParams({ hook });
    if (ORDER_HOOKS.has(hook) && $("order").value) params.set("order", $("order").value);
    const built = await getJson(`/try/patients/${encodeURIComponent(patient)}/request?${params}`);
    const request = built.body;
    const serviceId = built.response.headers.get("X-SpineCDS-Service-Id");
    lastServiceId = serviceId;
    const target = `/cds-services/${encodeURIComponent(serviceId)}`;
    $("request").textContent = pretty(request);
    $("request-target").textContent = `POST ${target}`;

    setStatus(`Calling ${target} ...`);
    const started = performance.now();
    const response = await fetch(target, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-SpineCDS-Trace": "true" },
      body: JSON.stringify(request),
    });
    const body = await response.json().catch(() => null);
    const ms = Math.round(performance.now() - started);
    if (!response.ok || !body || !Array.isArray(body.cards)) {
      renderCards([]);
      renderExtras({});
      setStatus(`The service refused the request: ${describeFailure(response, body)}`, true);
      return;
    }
    renderCards(body.cards);
    renderExtras((body.extension && body.extension.spinecds) || {});
    setStatus(`${body.cards.length} card(s) for ${patient} on ${hook} in ${ms} ms.`);
  } catch (error) {
    setStatus(`Failed: ${error.message}`, true);
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ rendering cards

function renderCards(cards) {
  const box = $("cards");
  box.replaceChildren();
  $("action-box").hidden = true;
  if (!cards.length) {
    box.append(el("p", { className: "muted" }, "No cards: the guideline has no advice for this chart on this hook."));
    return;
  }
  cards.forEach((card, index) => box.append(renderCard(card, index)));
}

function renderCard(card, index) {
  const indicator = INDICATOR_LABEL[card.indicator] ? card.indicator : "info";
  const headingId = `card-${index}-summary`;
  const article = el("article", { className: `card ${indicator}`, "aria-labelledby": headingId });
  article.append(el("div", { className: "card-head" },
    el("span", { className: `badge ${indicator}` }, INDICATOR_LABEL[indicator]),
    el("h3", { id: headingId }, card.summary || "(no summary)")));

  if (card.detail) {
    const detail = el("div", { className: "detail" });
    detail.innerHTML = renderMarkdown(card.detail); // escaped inside renderMarkdown
    article.append(detail);
  }

  const source = card.source || {};
  if (source.label) {
    const url = source.url && safeUrl(source.url);
    const label = url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, source.label) : source.label;
    article.append(el("p", { className: "source" }, "Source: ", label));
  }

  const suggestions = card.suggestions || [];
  if (suggestions.length) {
    const list = el("div", { className: "suggestions", role: "group", "aria-label": "Suggestions" });
    for (const suggestion of suggestions) {
      const button = el("button", { type: "button", className: "secondary", "aria-pressed": "false" },
        suggestion.label || "Suggestion");
      button.addEventListener("click", () => showSuggestion(suggestion, button));
      list.append(button);
    }
    article.append(list);
  }

  const links = (card.links || []).filter((link) => link.label && safeUrl(link.url));
  if (links.length) {
    const list = el("ul", { className: "links", "aria-label": "Links" });
    for (const link of links) {
      const note = link.type === "smart" ? " (SMART app)" : "";
      list.append(el("li", {}, el("a", { href: safeUrl(link.url), target: "_blank", rel: "noopener noreferrer" },
        link.label + note)));
    }
    article.append(list);
  }

  const reasons = card.overrideReasons || [];
  if (reasons.length) {
    article.append(el("p", { className: "reasons" }, "Override reasons: ",
      reasons.map((r) => r.display || r.code).join("; ")));
  }
  article.append(renderFeedback(card, index));

  const ext = (card.extension && card.extension.spinecds) || {};
  if (ext.ruleId) {
    const facts = [`rule ${ext.ruleId} v${ext.ruleVersion || "?"}`, `outcome ${JSON.stringify(ext.outcome)}`];
    if (ext.deadlineHours !== undefined) facts.push(`deadline ${ext.deadlineHours} h`);
    if (ext.hoursLeft !== undefined) facts.push(`${ext.hoursLeft} h left`);
    for (const merged of ext.merged || []) facts.push(`merged ${merged.ruleId} (${JSON.stringify(merged.outcome)})`);
    article.append(el("p", { className: "rule" }, facts.join(" - ")));
  }
  return article;
}

// ------------------------------------------------------------------ feedback (CDS Hooks feedback)

function renderFeedback(card, index) {
  const box = el("div", { className: "feedback", role: "group", "aria-label": "Feedback on this card" });
  const reasonId = `card-${index}-reason`;
  const commentId = `card-${index}-comment`;
  const reason = el("select", { id: reasonId });
  reason.append(el("option", { value: "" }, "(no reason)"));
  (card.overrideReasons || []).forEach((r, i) => reason.append(el("option", { value: String(i) }, r.display || r.code)));
  const comment = el("input", { id: commentId, type: "text", placeholder: "comment (optional)" });
  const override = el("button", { type: "button", className: "secondary" }, "Override");
  override.addEventListener("click", () => {
    const chosen = reason.value === "" ? null : (card.overrideReasons || [])[Number(reason.value)];
    const overrideReason = {};
    if (chosen) overrideReason.reason = chosen;
    if (comment.value.trim()) overrideReason.userComment = comment.value.trim();
    sendFeedback(card, { outcome: "overridden", ...(Object.keys(overrideReason).length ? { overrideReason } : {}) });
  });
  box.append(el("label", { for: reasonId }, "Override reason"), reason,
    el("label", { for: commentId, className: "visually-hidden" }, "Comment"), comment, override);
  const suggestions = card.suggestions || [];
  if (suggestions.length) {
    const accept = el("button", { type: "button", className: "secondary" }, "Accept first suggestion");
    accept.addEventListener("click", () => sendFeedback(card,
      { outcome: "accepted", acceptedSuggestions: [{ id: suggestions[0].uuid }] }));
    box.append(accept);
  }
  return box;
}

async function sendFeedback(card, item) {
  if (!lastServiceId) return;
  const body = { feedback: [{ card: card.uuid, outcomeTimestamp: new Date().toISOString(), ...item }] };
  const response = await fetch(`/cds-services/${encodeURIComponent(lastServiceId)}/feedback`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (response.ok) {
    setStatus(`Feedback "${item.outcome}" stored for "${card.summary}". Send again to see what this user gets now.`);
  } else {
    const failure = await response.json().catch(() => null);
    setStatus(`Feedback refused: ${describeFailure(response, failure)}`, true);
  }
}

function showSuggestion(suggestion, button) {
  for (const other of document.querySelectorAll(".suggestions button")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  const actions = suggestion.actions || [];
  const described = actions.map((a) => `${a.type || "?"}: ${a.description || ""}`.trim()).join("; ");
  $("action-heading").textContent = `Suggested action: ${suggestion.label || ""}`;
  $("action-description").textContent = described ||
    "No actions: accepting this suggestion records the choice only.";
  const resources = actions.map((a) => a.resource || a.resourceId).filter(Boolean);
  $("action").textContent = resources.length ? pretty(resources.length === 1 ? resources[0] : resources) : "";
  $("action").hidden = !resources.length;
  $("action-box").hidden = false;
  $("action-box").scrollIntoView({ block: "nearest" });
}

function renderExtras(spinecds) {
  const setAside = spinecds.setAside || [];
  $("set-aside").textContent = setAside.length
    ? `Not shown again to this user (overridden earlier, nothing changed since): ${setAside.join(", ")}.`
    : "";
  $("set-aside").hidden = !setAside.length;

  const quality = spinecds.dataQuality || [];
  $("quality").replaceChildren(...quality.map((item) =>
    el("li", {}, typeof item === "string" ? item : `${item.resource || ""}: ${item.issue || JSON.stringify(item)}`)));
  $("quality-box").hidden = !quality.length;

  const traceBox = $("trace-box");
  if (spinecds.trace) {
    $("trace").textContent = pretty(spinecds.trace);
    traceBox.hidden = false;
  } else {
    $("trace").textContent = "";
    traceBox.hidden = true;
  }
}

// ------------------------------------------------------------------ start

document.addEventListener("DOMContentLoaded", () => {
  $("patient").addEventListener("change", showPatient);
  $("hook").addEventListener("change", syncOrderField);
  $("try-form").addEventListener("submit", send);
  syncOrderField();
  loadChoices();
});

/* The assessment app after sign-in: read the chart, pre-fill, preview with the engine, write back.
 *
 * Flow: FHIR.oauth2.ready() (checks state, exchanges the code with the PKCE verifier) -> read Patient,
 * Condition and Observation of the launch patient -> POST the chart to the service's
 * /smart/api/assess (pre-fill + what the rules conclude) -> render the Questionnaires, the ones the
 * card asked for first -> on every change, preview again -> "Save to the chart": the service extracts
 * and builds ONE transaction Bundle with a Provenance; the app POSTs it to the FHIR server with the
 * user's token. The FHIR server writes all of it or nothing.
 */
"use strict";

const QUESTIONNAIRES = {
  sins: "spinecds-sins",
  performance: "spinecds-performance-status",
  staging: "spinecds-staging",
  symptoms: "spinecds-red-flags",
};
const PREVIEW_DELAY_MS = 250;
const MODEL_NAMES = { "van-der-linden": "Van der Linden", bollen: "Bollen" };
const $ = (id) => document.getElementById(id);

const app = { client: null, patientId: null, chart: [], forms: {}, context: {}, user: null, userName: null, timer: null, sequence: 0 };

function show(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

function fail(message) {
  delete $("error").dataset.kind;
  show("error", message);
  $("error").focus();
}

function parseContext(text) {
  if (!text) return {};
  try {
    const parsed = JSON.parse(text);
    return parsed && typeof parsed === "object" ? parsed : {};
  } catch (_) {
    return {};
  }
}

async function assess(answers, withUser) {
  const body = { patientId: app.patientId, chart: app.chart, answers, levels: app.context.levels || [] };
  if (withUser) Object.assign(body, { user: app.user, userName: app.userName });
  // The service checks the launch with the EHR: our access token must read this patient on this server.
  const headers = {
    "Content-Type": "application/json",
    Authorization: `Bearer ${app.client.state.tokenResponse.access_token}`,
    "X-Smart-Fhir-Server": app.client.state.serverUrl,
    "X-Smart-Patient": app.patientId,
  };
  const response = await fetch("api/assess", { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.status !== 200 && response.status !== 422) {
    const issue = (data.issue || [])[0] || {};
    throw new Error(`the assessment service answered ${response.status}: ${issue.diagnostics || "no details"}`);
  }
  return data;
}

function answers() {
  const found = {};
  for (const form of Object.values(app.forms)) found[form.questionnaire.id] = form.response(app.patientId);
  return found;
}

/* ---------------------------------------------------------------- the live result */

function cardsWithMerged(summary) {
  const found = [];
  for (const card of (summary && summary.cards) || []) {
    found.push(card);
    for (const merged of card.merged || []) found.push(merged);
  }
  return found;
}

function describeSins(card) {
  const sins = card.sins || {};
  const score = sins.total !== undefined ? String(sins.total) : `${sins.min}-${sins.max}`;
  return `${sins.level || "lesion"}: SINS ${score}, ${String(sins.category || "incomplete").replace(/-/g, " ")}`;
}

function renderSummary(node, summary, title) {
  node.replaceChildren();
  node.append(Object.assign(document.createElement("h3"), { textContent: title }));
  const cards = cardsWithMerged(summary);
  const list = document.createElement("dl");
  const add = (term, value) => {
    list.append(Object.assign(document.createElement("dt"), { textContent: term }));
    list.append(Object.assign(document.createElement("dd"), { textContent: value }));
  };
  const sins = cards.filter((c) => c.sins);
  add("SINS", sins.length ? sins.map(describeSins).join("; ") : "no SINS assessment");
  const survival = cards.find((c) => c.survival && c.survival.length);
  add(
    "Survival groups",
    survival
      ? survival.survival.map((s) => `${MODEL_NAMES[s.model] || s.model}: ${s.group ? `group ${s.group}` : `groups ${(s.groups || []).join(" or ")}`}${s.medianMonths ? ` (median ${s.medianMonths} months)` : ""}`).join("; ")
      : "not computable yet",
  );
  const eligibility = cards.find((c) => c.ruleId === "surgery-eligibility");
  add("Surgery eligibility", eligibility ? String(eligibility.outcome).replace(/-/g, " ") : "not assessed (no surgical question)");
  const missing = (summary && summary.missing) || [];
  add("Still missing", missing.length ? missing.join("; ") : "nothing");
  node.append(list);
}

function renderResult(data) {
  renderSummary($("result-after"), data.after || data.before, data.after ? "With your answers" : "In the chart now");
  renderSummary($("result-before"), data.before, "In the chart now");
  $("result-before-box").hidden = !data.after;
  const notes = data.notes || [];
  show("notes", notes.length ? `Note: ${notes.join("; ")}.` : "");
}

function markProblems(problems) {
  let first = null;
  for (const form of Object.values(app.forms)) {
    const marked = form.mark(problems);
    if (marked && !first) first = marked;
  }
  const list = $("problems");
  list.replaceChildren();
  for (const problem of problems) {
    list.append(Object.assign(document.createElement("li"), { textContent: `${problem.where}: ${problem.message}` }));
  }
  $("problems-box").hidden = problems.length === 0;
  return first;
}

function schedulePreview() {
  clearTimeout(app.timer);
  app.timer = setTimeout(preview, PREVIEW_DELAY_MS);
}

async function preview() {
  const sequence = ++app.sequence;
  try {
    const data = await assess(answers(), false);
    if (sequence !== app.sequence) return; // a newer preview is on its way
    markProblems(data.problems || []);
    if (!(data.problems || []).length && $("error").dataset.kind === "problems") show("error", "");
    renderResult(data);
    $("result").dataset.state = "ready";
  } catch (error) {
    show("status", `Preview unavailable: ${error.message}`);
  }
}

/* ---------------------------------------------------------------- saving */

async function save(event) {
  event.preventDefault();
  clearTimeout(app.timer);
  show("error", "");
  $("save").disabled = true;
  show("status", "Checking the answers…");
  try {
    const data = await assess(answers(), true);
    const first = markProblems(data.problems || []);
    if ((data.problems || []).length) {
      fail("Nothing was saved: some answers need correcting (listed above the form).");
      $("error").dataset.kind = "problems";
      show("status", "");
      if (first && first.focusable) first.focusable.focus();
      return;
    }
    renderResult(data);
    if (!data.transaction) {
      show("status", "Nothing to save: no answer changes what the chart already says.");
      return;
    }
    show("status", "Saving to the chart…");
    const server = app.client.state.serverUrl.replace(/\/$/, "");
    const response = await fetch(`${server}/`, {
      method: "POST",
      headers: {
        "Content-Type": "application/fhir+json",
        Accept: "application/fhir+json",
        Authorization: `Bearer ${app.client.state.tokenResponse.access_token}`,
      },
      body: JSON.stringify(data.transaction),
    });
    const outcome = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = ((outcome.issue || [])[0] || {}).diagnostics || response.statusText || "no reason given";
      fail(`Nothing was saved: the EHR's FHIR server refused the write (HTTP ${response.status}): ${reason}`);
      show("status", "");
      return;
    }
    // The response lists the entries in the order they were sent: name each by what it records.
    const sent = data.transaction.entry.map((e) => e.resource);
    const written = (outcome.entry || []).map((e) => e.response && e.response.location).filter(Boolean);
    const items = written.map((location, n) => {
      const resource = sent[n] || {};
      const what = resource.resourceType === "Provenance" ? "Provenance (who recorded this, with which app)" : ((resource.code || {}).text || resource.resourceType);
      const where = resource.bodySite && resource.bodySite.text ? `, ${resource.bodySite.text}` : "";
      const item = Object.assign(document.createElement("li"), { textContent: `${what}${where} ` });
      item.append(Object.assign(document.createElement("code"), { textContent: location }));
      return item;
    });
    const done = $("done");
    $("done-list").replaceChildren(...items);
    done.hidden = false;
    $("assessment").hidden = true;
    show("status", `Saved ${written.length} resources to the chart.`);
    done.focus();
  } catch (error) {
    fail(`Nothing was saved: ${error.message}`);
    show("status", "");
  } finally {
    $("save").disabled = false;
  }
}

/* ---------------------------------------------------------------- start */

async function start() {
  try {
    app.client = await FHIR.oauth2.ready();
  } catch (error) {
    show("banner", "Not signed in.");
    fail(`The sign-in could not be completed (${error.message}). Open the app again from the patient's chart in the EHR.`);
    return;
  }
  try {
    const client = app.client;
    app.patientId = client.patient.id;
    app.context = parseContext(client.state.tokenResponse.appContext);
    const idToken = client.getIdToken() || {};
    app.user = client.getFhirUser() || null;
    app.userName = idToken.name || null;
    if (!app.patientId) throw new Error("the EHR gave no patient context");
    show("status", "Reading the chart…");
    const [patient, conditions, observations] = await Promise.all([
      client.patient.read(),
      client.request(`Condition?patient=${encodeURIComponent(app.patientId)}`, { pageLimit: 0, flat: true }),
      client.request(`Observation?patient=${encodeURIComponent(app.patientId)}`, { pageLimit: 0, flat: true }),
    ]);
    app.chart = [patient, ...conditions, ...observations];
    const name = ((patient.name || [])[0] || {});
    show("banner", `Patient: ${[...(name.given || []), name.family].filter(Boolean).join(" ") || app.patientId} · born ${patient.birthDate || "unknown"}${app.userName ? ` · signed in as ${app.userName}` : ""}`);

    const first = await assess({}, false);
    const asked = (app.context.questions || []).filter((q) => QUESTIONNAIRES[q]);
    const order = [...asked, ...Object.keys(QUESTIONNAIRES).filter((q) => !asked.includes(q))];
    const sections = $("sections");
    for (const key of order) {
      const qid = QUESTIONNAIRES[key];
      const questionnaire = await (await fetch(`questionnaires/${qid}`)).json();
      const form = new QuestionnaireForm(questionnaire, first.prefill[qid], schedulePreview, `h-${qid}`);
      if (asked.includes(key)) form.heading.append(Object.assign(document.createElement("span"), { className: "asked", textContent: " (asked by the card)" }));
      app.forms[key] = form;
      sections.append(form.node);
    }
    if ((app.context.missing || []).length) show("asked", `The card asked for: ${app.context.missing.join("; ")}.`);
    renderResult(first);
    $("assessment").hidden = false;
    $("assessment").addEventListener("submit", save);
    show("status", "Ready. Answers are previewed as you go; nothing is saved until you press Save to the chart.");
    const target = app.forms[order[0]];
    if (target) target.heading.focus();
  } catch (error) {
    fail(`The chart could not be read: ${error.message}`);
  }
}

start();

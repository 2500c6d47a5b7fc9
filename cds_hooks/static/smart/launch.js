/* SMART launch: EHR launch (`launch` + `iss` in the URL) or standalone (a FHIR server URL typed in,
 * the patient chosen at the authorisation server). Public client, PKCE required (S256). */
"use strict";

function showError(message) {
  const node = document.getElementById("error");
  node.textContent = message;
  node.hidden = false;
  node.focus();
  document.getElementById("status").textContent = "";
}

async function launch(iss, launchId) {
  const config = await (await fetch("config.json")).json();
  // Standalone: no launch context to bind, so ask the authorisation server for a patient instead.
  const scope = launchId ? config.scope : config.scope.replace(/(^| )launch( |$)/, "$1launch/patient$2");
  document.getElementById("status").textContent = "Signing in at the EHR…";
  await FHIR.oauth2.authorize({
    clientId: config.clientId,
    scope,
    iss,
    launch: launchId || undefined,
    redirectUri: "index.html",
    pkceMode: "required",
  });
}

function start() {
  const params = new URLSearchParams(window.location.search);
  const iss = params.get("iss");
  if (iss) {
    launch(iss, params.get("launch")).catch((error) => showError(`The launch failed: ${error.message}`));
    return;
  }
  document.getElementById("status").textContent = "No EHR launch context.";
  const form = document.getElementById("standalone");
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const url = document.getElementById("iss").value.trim();
    launch(url, null).catch((error) => showError(`The launch failed: ${error.message}`));
  });
}

start();

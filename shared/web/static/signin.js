// Issue 19: sign-in of the browser pages (shared/web/signin.py: the clinicians' page, issue 23's entry forms), plain
// JavaScript, no library. OpenID Connect authorization code flow with PKCE S256 (RFC 7636) as a public client, and
// the SMART App Launch 2.x EHR launch (the clinicians' page only). The access token is kept in sessionStorage (this tab only) and sent as a Bearer header; it is
// never put in a URL and never logged. The code and state are removed from the address bar at once.
"use strict";
(() => {
  const TOKEN = "osteocds.token";
  const PENDING = "osteocds.signin"; // the flow in progress: state, nonce, verifier (removed when the answer comes)
  const PATIENT = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
  let config = null;

  const loadConfig = () => (config = config || fetch("/ui/signin/config", { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new Error("Paramètres de connexion indisponibles.");
    return r.json();
  }));
  const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
  const s256 = async (verifier) => b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const claims = (jwt) => {
    const part = (jwt.split(".")[1] || "").replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(part), (c) => c.charCodeAt(0))));
  };
  const trim = (url) => (url || "").replace(/\/+$/, "");

  async function metadata(base, smart) {
    const r = await fetch(`${trim(base)}/.well-known/${smart ? "smart-configuration" : "openid-configuration"}`);
    if (!r.ok) throw new Error("Fournisseur d'identité injoignable.");
    return r.json();
  }

  // Starts the code flow: a new verifier, state and nonce; the user goes to the provider's sign-in page.
  async function start(opts) {
    const cfg = await loadConfig();
    const smart = Boolean(opts.launch);
    const meta = await metadata(smart ? opts.iss : cfg.issuer, smart);
    if (!(meta.code_challenge_methods_supported || ["S256"]).includes("S256")) throw new Error("PKCE S256 non pris en charge.");
    const scope = smart ? `${cfg.scopes} launch launch/patient` : cfg.scopes;
    const pending = {
      state: random(16), nonce: random(16), verifier: random(32), // 43 characters (RFC 7636 §4.1)
      client_id: cfg.client_id, token_endpoint: meta.token_endpoint, issuer: meta.issuer || null,
      redirect_uri: `${location.origin}/ui/callback`, openid: scope.split(" ").includes("openid"),
      return_to: opts.returnTo || null, launch: smart,
    };
    const params = new URLSearchParams({
      response_type: "code", client_id: cfg.client_id, redirect_uri: pending.redirect_uri, scope,
      state: pending.state, nonce: pending.nonce, code_challenge: await s256(pending.verifier), code_challenge_method: "S256",
    });
    if (smart) { params.set("launch", opts.launch); params.set("aud", opts.iss); }
    sessionStorage.setItem(PENDING, JSON.stringify(pending));
    location.assign(`${meta.authorization_endpoint}?${params}`);
  }

  // /ui/callback: state checked, code exchanged with the verifier, nonce checked, then the patient's page.
  async function complete() {
    const answer = new URLSearchParams(location.search);
    history.replaceState(null, "", location.pathname); // the code and state leave the address bar and history
    const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
    sessionStorage.removeItem(PENDING);
    const cfg = await loadConfig();
    if (!pending || !answer.get("state") || answer.get("state") !== pending.state) {
      throw new Error("Réponse de connexion inattendue : recommencez depuis la page du patient.");
    }
    if (answer.get("error")) throw new Error(`Connexion refusée par le fournisseur d'identité (${answer.get("error")}).`);
    const r = await fetch(pending.token_endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code", code: answer.get("code") || "", redirect_uri: pending.redirect_uri,
        client_id: pending.client_id, code_verifier: pending.verifier,
      }),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok || !body.access_token) throw new Error("Échange du code refusé : recommencez la connexion.");
    if (pending.openid) {
      const id = body.id_token ? claims(body.id_token) : {};
      const aud = Array.isArray(id.aud) ? id.aud : [id.aud];
      if (id.nonce !== pending.nonce || !aud.includes(pending.client_id) || (pending.issuer && trim(id.iss) !== trim(pending.issuer))) {
        throw new Error("Jeton d'identité inattendu : connexion refusée.");
      }
    }
    let target = pending.return_to;
    // SMART launch context: the patient open in the EHR, only for a launch this tab started (HAZ-19-AUTH-01: a
    // `patient` in an ordinary sign-in's answer never replaces the patient the clinician was on)
    if (pending.launch && cfg.smart_iss.length) {
      if (!PATIENT.test(String(body.patient ?? ""))) throw new Error("Patient du contexte de lancement absent ou invalide.");
      target = `${cfg.page}${encodeURIComponent(body.patient)}`;
    }
    // back to one of the system's pages only (a path of this origin under cfg.pages): never an address from elsewhere
    if (!target || !cfg.pages.some((p) => target.startsWith(p))) throw new Error("Aucun patient à ouvrir.");
    sessionStorage.setItem(TOKEN, body.access_token);
    location.replace(target);
  }

  // /ui/launch?iss=...&launch=...: an accepted EHR, then the code flow with the launch ID.
  async function launch() {
    const q = new URLSearchParams(location.search);
    history.replaceState(null, "", location.pathname);
    const cfg = await loadConfig();
    if (!cfg.smart_iss.includes(trim(q.get("iss")))) throw new Error("Lancement refusé : serveur du DPI non autorisé.");
    await start({ iss: q.get("iss"), launch: q.get("launch") });
  }

  const fail = (where) => (e) => {
    const box = document.getElementById(where);
    if (box) box.textContent = e instanceof Error ? e.message : "Connexion impossible.";
  };
  if (location.pathname === "/ui/callback") complete().catch(fail("signin-error"));
  if (location.pathname === "/ui/launch") launch().catch(fail("signin-error"));

  // The pages (their login section calls these: #login, #login-error, #dev-login).
  window.OsteoSignIn = {
    start: (returnTo) => start({ returnTo }).catch(fail("login-error")),
    keep: (token) => sessionStorage.setItem(TOKEN, token), // DEVELOPMENT ONLY: a pasted token
    showLogin(message) {
      sessionStorage.removeItem(TOKEN); // refused or expired: not tried again
      loadConfig()
        .then((cfg) => { document.getElementById("dev-login").hidden = !cfg.token_paste; })
        .catch(() => {})
        .finally(() => {
          document.getElementById("login").hidden = false;
          document.getElementById("login-error").textContent = message || "";
        });
    },
  };
})();

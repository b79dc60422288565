/* The kiosk's service worker: keeps the page's shell (the page itself, its script and style)
 * so that the tablet still shows the form when the network drops (or the page is reloaded
 * while it is down). Only GETs of the same origin are cached; answers are POSTs and go to
 * the network (the page queues them). */
"use strict";
var CACHE = "sipas-kiosk-v4";
var SHELL = ["/form-static/form.js", "/form-static/form.css", "/kiosk-static/kiosk.js",
             "/kiosk-static/keyboard.js", "/kiosk-static/kiosk.css", "/kiosk-static/icon.svg"];
// What a navigation gets when the network is down and no copy of the page was kept: the
// browser's own error page would leave the tablet stuck; this one tries again by itself.
var OFFLINE_PAGE = '<!doctype html><html lang="vi"><meta charset="utf-8">' +
  '<meta name="viewport" content="width=device-width, initial-scale=1">' +
  '<meta http-equiv="refresh" content="15"><title>Mất kết nối</title>' +
  '<link rel="icon" href="/kiosk-static/icon.svg">' +
  '<body style="font: 1.4rem sans-serif; text-align: center; padding: 3rem 1rem">' +
  '<h1 id="offline">Máy đang mất kết nối mạng</h1>' +
  '<p>Trang sẽ tự tải lại sau 15 giây.</p></body></html>';

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.addAll(SHELL); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

// The page asks to be kept once the worker is active: its first load came from the network,
// before the worker existed, so the worker has not seen it yet.
self.addEventListener("message", function (event) {
  var path = event.data && event.data.keep;
  if (typeof path !== "string" || path.indexOf("/kiosk/") !== 0) return;
  event.waitUntil(caches.open(CACHE).then(function (c) { return c.add(path); }));
});

// A kept answer as a navigation may use it: a browser refuses, for a navigation, a response
// that followed a redirect, so such a copy is handed on as a fresh response of its own.
function usable(response) {
  if (!response.redirected) return response;
  return response.blob().then(function (body) {
    return new Response(body, { status: response.status, statusText: response.statusText,
                                headers: response.headers });
  });
}

// The kept copy of `request` when the network failed. The page answers "Vary: Cookie" (its
// session); the shell is the same whatever the cookie, and a navigation's request is not the
// one the page asked to keep, so the copy is looked up by address alone.
function kept(request, failure) {
  return caches.match(request, { ignoreVary: true }).then(function (hit) {
    return hit || caches.match(new URL(request.url).pathname, { ignoreVary: true });
  }).then(function (hit) {
    if (hit) return usable(hit);
    console.error("kiosk: " + request.url + " failed (" + failure + ") and no copy is kept");
    if (request.mode !== "navigate") return Response.error();
    return new Response(OFFLINE_PAGE, {
      status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  // Network first, the kept copy when offline; the cache follows each good answer.
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (c) { return c.put(request, copy); });
    }
    return response;
  }).catch(function (failure) { return kept(request, failure); }));
});

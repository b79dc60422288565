/* The kiosk's service worker: keeps the page's shell (the page itself, its script and style)
 * so that the tablet still shows the form when the network drops (or the page is reloaded
 * while it is down). Only GETs of the same origin are cached; answers are POSTs and go to
 * the network (the page queues them). */
"use strict";
var CACHE = "sipas-kiosk-v3";
var SHELL = ["/form-static/form.js", "/form-static/form.css", "/kiosk-static/kiosk.js",
             "/kiosk-static/keyboard.js", "/kiosk-static/kiosk.css", "/kiosk-static/icon.svg"];

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

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  // Network first, the cached copy when offline; the cache follows each good answer.
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (c) { c.put(request, copy); });
    }
    return response;
  }).catch(function () {
    // The page answers "Vary: Cookie" (its session); the shell is the same whatever the
    // cookie, and a navigation's request is not the one the page asked to keep, so the
    // cached copy is looked up by address alone.
    return caches.match(request, { ignoreVary: true }).then(function (hit) {
      return hit || caches.match(new URL(request.url).pathname, { ignoreVary: true });
    }).then(function (hit) { return hit || Response.error(); });
  }));
});

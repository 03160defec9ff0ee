/* Spillway embed player, real-time side: a seat in the room's Janus AudioBridge over WebRTC.
 *
 * window.SpillwayRealtime(options) → seat controller used by player.js:
 *   tryJoin(joinUrl) → Promise of "realtime" | "hls:<reason>"   (reason: full, no_realtime, sfu_unavailable,
 *                                                                 refused, ice, timeout, error, no_sfu)
 *   leave(reason)    frees the seat (DELETE, keepalive) and closes the PeerConnection
 *   pc()             the RTCPeerConnection (tests read getStats from it)
 * options: iceServers, joinTimeoutMs, onGranted() when the origin grants the seat, onTrack(track) when room
 * audio arrives, onEnded(reason) when a seat that
 * was up is lost (kicked, ICE failure, lease ended, Janus gone). The listener joins muted with a receive-only
 * offer (no microphone is ever asked for), with the lease's join token and participant id: Janus itself
 * refuses anyone else (error 489).
 */
(function () {
  "use strict";

  var janusReady = null;

  function browserDetails() {
    // janus.js reads only adapter.browserDetails from webrtc-adapter; this is that much of it.
    var ua = navigator.userAgent;
    var m = ua.match(/Firefox\/(\d+)/) || ua.match(/Chrom(?:e|ium)\/(\d+)/) || ua.match(/Version\/(\d+).*Safari/);
    var browser = /Firefox\//.test(ua) ? "firefox" : /Chrom(e|ium)\//.test(ua) ? "chrome" :
      /Safari\//.test(ua) ? "safari" : "unknown";
    return { browser: browser, version: m ? parseInt(m[1], 10) : null };
  }

  function initJanus() {
    if (janusReady) return janusReady;
    janusReady = new Promise(function (resolve, reject) {
      if (typeof window.Janus === "undefined" || !window.RTCPeerConnection) {
        reject(new Error("no WebRTC"));
        return;
      }
      window.Janus.init({
        debug: false,
        dependencies: window.Janus.useDefaultDependencies({ adapter: { browserDetails: browserDetails() } }),
        callback: function () { resolve(window.Janus); }
      });
    });
    return janusReady;
  }

  function postJson(url, method) {
    return window.fetch(url, { method: method, credentials: "omit", cache: "no-store", keepalive: method === "DELETE" })
      .then(function (r) {
        return r.json().then(function (body) { return { status: r.status, body: body }; },
          function () { return { status: r.status, body: null }; });
      });
  }

  window.SpillwayRealtime = function (options) {
    var seat = null; // {lease, sfu, joinUrl}
    var janus = null;
    var handle = null;
    var heartbeat = null;
    var up = false;
    var ended = false;

    function leaseUrl() { return seat.joinUrl + "/" + encodeURIComponent(seat.lease.id); }

    function close() {
      if (heartbeat !== null) window.clearTimeout(heartbeat);
      heartbeat = null;
      var j = janus;
      janus = null;
      handle = null;
      if (j) {
        try { j.destroy({ cleanupHandles: true, notifyDestroyed: false }); } catch (e) { /* already gone */ }
      }
    }

    function release() {
      if (seat) postJson(leaseUrl(), "DELETE").catch(function () { /* the lease expires by itself */ });
      seat = null;
    }

    function lost(reason) {
      // A seat that was up is gone: tell the player once, free what is left.
      if (ended) return;
      ended = true;
      var wasUp = up;
      up = false;
      close();
      release();
      if (wasUp && options.onEnded) options.onEnded(reason);
    }

    function scheduleHeartbeat() {
      heartbeat = window.setTimeout(function () {
        if (!seat) return;
        postJson(leaseUrl() + "/heartbeat", "POST").then(function (r) {
          if (r.status === 200) scheduleHeartbeat();
          else if (r.status === 410 || r.status === 404) lost("lease_ended");
          else scheduleHeartbeat(); // a transient error: two more tries before the lease lapses
        }, function () { if (seat) scheduleHeartbeat(); });
      }, seat.lease.heartbeat_interval_seconds * 1000);
    }

    function connect(JanusLib, resolve, fail) {
      var sfu = seat.sfu;
      janus = new JanusLib({
        server: sfu.url,
        iceServers: options.iceServers || [],
        success: function () {
          janus.attach({
            plugin: "janus.plugin.audiobridge",
            success: function (h) {
              handle = h;
              h.send({ message: { request: "join", room: sfu.room, id: sfu.participant_id, token: sfu.token,
                muted: true, display: "listener" } });
            },
            error: function () { fail("error"); },
            onmessage: function (msg, jsep) {
              if (msg.error_code) { fail(msg.error_code === 489 ? "refused" : "error"); return; }
              if (msg.audiobridge === "joined" && msg.id === sfu.participant_id) {
                handle.createOffer({
                  tracks: [{ type: "audio", capture: false, recv: true }],
                  trickle: false, // one offer after gathering: no trickle round trips on a short join
                  success: function (offer) { handle.send({ message: { request: "configure", muted: true }, jsep: offer }); },
                  error: function () { fail("error"); }
                });
              }
              if (msg.audiobridge === "event" && msg.kicked === sfu.participant_id) lost("kicked");
              if (msg.audiobridge === "destroyed") lost("room_closed");
              if (jsep) handle.handleRemoteJsep({ jsep: jsep, error: function () { fail("error"); } });
            },
            onremotetrack: function (track, _mid, on) {
              if (!on || track.kind !== "audio") return;
              up = true;
              if (options.onTrack) options.onTrack(track);
              resolve("realtime");
            },
            iceState: function (state) { if (state === "failed") fail("ice"); },
            webrtcState: function (isUp) { if (!isUp) fail("ice"); },
            hangup: function () { fail("ice"); }
          });
        },
        error: function () { fail("sfu_unavailable"); },
        destroyed: function () { /* ours */ }
      });
    }

    function tryJoin(joinUrl) {
      ended = false;
      up = false;
      return postJson(joinUrl, "POST").then(function (r) {
        if (r.status === 200 && r.body && r.body.mode === "hls") return "hls:" + (r.body.reason || "full");
        if (r.status !== 201 || !r.body || r.body.mode !== "realtime") return "hls:error";
        seat = { lease: r.body.lease, sfu: r.body.sfu, joinUrl: joinUrl };
        if (options.onGranted) options.onGranted();
        if (!seat.sfu || seat.sfu.kind !== "janus") {
          release();
          return "hls:no_sfu";
        }
        scheduleHeartbeat();
        return initJanus().then(function (JanusLib) {
          return new Promise(function (resolve) {
            var timer = window.setTimeout(function () { fail("timeout"); }, options.joinTimeoutMs || 10000);
            function fail(reason) {
              window.clearTimeout(timer);
              if (up) { lost(reason); return; }
              ended = true;
              close();
              release();
              resolve("hls:" + reason);
            }
            connect(JanusLib, function (v) { window.clearTimeout(timer); resolve(v); }, fail);
          });
        }, function () {
          close();
          release();
          return "hls:no_webrtc";
        });
      }, function () { return "hls:error"; });
    }

    return {
      tryJoin: tryJoin,
      leave: function () { ended = true; up = false; close(); release(); },
      pc: function () { return handle && handle.webrtcStuff ? handle.webrtcStuff.pc : null; },
      lease: function () { return seat ? seat.lease.id : null; }
    };
  };
})();

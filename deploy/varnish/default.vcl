vcl 4.1;
# The edge cache in front of gunicorn: Varnish 7 with vmod_xkey (varnish-modules).
#
# Rendered by ./scripts/edge, which replaces the {{...}} placeholders with the
# environment (EDGE_BACKEND, EDGE_PURGE_SECRET, EDGE_PURGE_ACL); nothing else
# needs editing.
#
# What it does:
# - caches only responses the app marks `public` (anonymous aggregates), for
#   their s-maxage, which the app caps at the moment their content stops being
#   true (an offer ending, an event starting);
# - passes anything with Authorization or a session cookie, and every method
#   but GET and HEAD;
# - one object per normalised URL (query parameters sorted, tracking ones
#   dropped) and per encoding class: br, zstd, gzip (stored once, gunzipped
#   by Varnish for clients without gzip), as the app would choose from the
#   client's Accept-Encoding (q=0 refuses a coding);
# - each object carries the app's tags (the `xkey` header); the app purges by
#   tag on every commit that bumps one (PURGE with `xkey-softpurge`, from the
#   purgers ACL and with the shared secret): a soft purge, so the object stays
#   for stale-if-error while the next request fetches it again (`xkey-purge`
#   removes objects outright, for an operator);
# - serves stale copies only while the backend is unhealthy (stale-if-error,
#   up to the app's `stale-if-error`); while it is healthy an expired or purged
#   object is fetched again before anyone sees it (concurrent requests share
#   that one fetch), so a change is visible on the next request after its
#   commit;
# - says HIT or MISS in `X-Edge-Cache`, and adds its own member (`edge`) to
#   the app's `Cache-Status` (RFC 9211).

import std;
import xkey;

backend app {
    .host = "{{EDGE_BACKEND_HOST}}";
    .port = "{{EDGE_BACKEND_PORT}}";
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
    .probe = {
        .url = "/health/live";
        .interval = 1s;
        .timeout = 500ms;
        .window = 3;
        .threshold = 2;
        .initial = 2;
    }
}

acl purgers {
{{EDGE_PURGE_ACL}}
}

sub vcl_recv {
    unset req.http.X-Edge-Encoding;  # ours alone (set below), whatever a client sends
    if (req.method == "PURGE") {
        if (client.ip !~ purgers || req.http.X-Purge-Secret != "{{EDGE_PURGE_SECRET}}") {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey-softpurge) {
            set req.http.n-gone = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Soft-purged " + req.http.n-gone + " objects"));
        }
        if (req.http.xkey-purge) {
            set req.http.n-gone = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Purged " + req.http.n-gone + " objects"));
        }
        return (synth(400, "An xkey-softpurge or xkey-purge header is required"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization || req.http.Cookie ~ "(^|;\s*)(sessionid|csrftoken)=") {
        return (pass);
    }
    unset req.http.Cookie;  # analytics cookies do not change an anonymous response

    # One object per normalised URL: tracking parameters dropped, the rest sorted.
    set req.url = regsuball(req.url, "([?&])(utm_[a-z]+|gclid|fbclid|mc_cid|mc_eid|_ga)=[^&]*", "\1");
    set req.url = regsuball(req.url, "&{2,}", "&");
    set req.url = regsub(req.url, "\?&+", "?");
    set req.url = regsub(req.url, "[?&]+$", "");
    set req.url = std.querysort(req.url);

    # ... and per encoding class: the first of br, zstd, gzip the client takes
    # (named without q or with q above 0), the app's order. Varnish knows only
    # gzip (it may rewrite Accept-Encoding to "gzip" or remove it after this
    # sub), so br and zstd are kept apart by the hash (vcl_hash) and asked of
    # the app by name (vcl_backend_fetch).
    if (req.http.Accept-Encoding ~ "(?i)(^|,)\s*br\s*(;\s*q\s*=\s*(1(\.0{0,3})?|0?\.[0-9]{0,2}[1-9]))?\s*(,|$)") {
        set req.http.X-Edge-Encoding = "br";
    } elsif (req.http.Accept-Encoding ~ "(?i)(^|,)\s*zstd\s*(;\s*q\s*=\s*(1(\.0{0,3})?|0?\.[0-9]{0,2}[1-9]))?\s*(,|$)") {
        set req.http.X-Edge-Encoding = "zstd";
    }
    if (req.http.Accept-Encoding ~ "(?i)(^|,)\s*gzip\s*(;\s*q\s*=\s*(1(\.0{0,3})?|0?\.[0-9]{0,2}[1-9]))?\s*(,|$)") {
        set req.http.Accept-Encoding = "gzip";
    } else {
        unset req.http.Accept-Encoding;
    }

    # Grace only while the backend is down: then stale copies are served
    # (stale-if-error); otherwise nothing expired or purged is ever served.
    if (std.healthy(req.backend_hint)) {
        set req.grace = 0s;
    }
    return (hash);
}

sub vcl_hash {
    if (req.http.X-Edge-Encoding) {
        hash_data(req.http.X-Edge-Encoding);
    }
    # then the built-in vcl_hash: the URL and the host
}

sub vcl_backend_fetch {
    # Varnish asks for gzip; a br or zstd object is asked for by that name only.
    if (bereq.http.X-Edge-Encoding) {
        set bereq.http.Accept-Encoding = bereq.http.X-Edge-Encoding;
    }
    unset bereq.http.X-Edge-Encoding;
}

sub vcl_backend_response {
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);  # keep the stale copy rather than caching an error
    }
    if (beresp.http.Cache-Control !~ "(^|[ ,])public([ ,]|$)" || beresp.status != 200) {
        set beresp.uncacheable = true;  # remember "do not cache" for a while
        set beresp.ttl = 60s;
        return (deliver);
    }
    # How long a stale copy may stand in while the backend is down.
    if (beresp.http.Cache-Control ~ "stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Cache-Control, ".*stale-if-error=([0-9]+).*", "\1s"), 0s);
    } else {
        set beresp.grace = 0s;
    }
    return (deliver);
}

sub vcl_deliver {
    if (obj.uncacheable) {
        set resp.http.X-Edge-Cache = "PASS";
        set req.http.edge-status = "edge; fwd=bypass";
    } else if (obj.hits > 0) {
        set resp.http.X-Edge-Cache = "HIT";
        set req.http.edge-status = "edge; hit; ttl=" + std.integer(duration=obj.ttl, fallback=0);
    } else {
        set resp.http.X-Edge-Cache = "MISS";
        set req.http.edge-status = "edge; fwd=miss; stored; ttl=" + std.integer(duration=obj.ttl, fallback=0);
    }
    # RFC 9211: the app's caches (origin side) first, the edge, nearest the client, last.
    if (resp.http.Cache-Status) {
        set resp.http.Cache-Status = resp.http.Cache-Status + ", " + req.http.edge-status;
    } else {
        set resp.http.Cache-Status = req.http.edge-status;
    }
    unset req.http.edge-status;
    unset resp.http.xkey;  # for the edge only
    unset resp.http.Via;
    unset resp.http.X-Varnish;
}

sub vcl_synth {
    if (req.method == "PURGE") {
        set resp.http.Content-Type = "text/plain";
    }
}

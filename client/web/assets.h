// The live view's static files (client/web/index.html, app.js, style.css), embedded into `tally`
// at build time by client/web/embed.cmake: the installed program needs no path to serve them.
#pragma once

#include <cstddef>

namespace tally::client::web {

struct Asset {
    const char* path;          // "/index.html"
    const char* content_type;  // "text/html; charset=utf-8"
    const unsigned char* data;
    size_t size;
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace tally::client::web

package assets

import "embed"

// Web is the dashboard the proxy serves at / (web/): its page, script and
// style, and uPlot (web/uplot, MIT), all embedded: nothing is fetched at run time.
//
//go:embed web
var Web embed.FS

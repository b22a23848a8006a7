#!/bin/sh
# bundle.sh BINARY VERSION OUTDIR lays out OUTDIR/ccmux.app around a macOS
# ccmux binary. It only copies and fills in files, so CI checks the result on
# Linux; the release workflow builds the binary, signs and zips the bundle on macOS.
set -eu
if [ $# -ne 3 ]; then
	echo "usage: $0 BINARY VERSION OUTDIR" >&2
	exit 2
fi
bin=$1 version=${2#v} out=$3
here=$(cd "$(dirname "$0")" && pwd)

# CFBundleShortVersionString and CFBundleVersion are numbers only:
# 1.2.3-rc.1 and 0.0.0-SNAPSHOT-abc1234 become 1.2.3 and 0.0.0.
short=${version%%[-+]*}
case $short in
'' | *[!0-9.]* | .* | *. | *..*)
	echo "bundle.sh: version \"$2\" does not start with a number such as 1.2.3" >&2
	exit 1
	;;
esac

app=$out/ccmux.app
rm -rf "$app"
mkdir -p "$app/Contents/MacOS" "$app/Contents/Resources"
cp "$bin" "$app/Contents/MacOS/ccmux"
chmod 755 "$app/Contents/MacOS/ccmux"
cp "$here/ccmux.icns" "$app/Contents/Resources/ccmux.icns"
sed "s/@VERSION@/$short/g" "$here/Info.plist.in" >"$app/Contents/Info.plist"
printf 'APPL????' >"$app/Contents/PkgInfo"
echo "$app"

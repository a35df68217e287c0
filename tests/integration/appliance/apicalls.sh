# tests/integration/appliance/apicalls.sh: the management API calls the
# shell tests share. Sourced after $C (curl with the daemon's CA), $U (its
# base URL) and $TMP (the test's scratch folder, with $TMP/seen) are set;
# never run. Each answer goes to its own numbered file, so a check can read
# the body of the call it just made ($(last)) even from a subshell.
#
#   as KEY METHOD PATH [BODY]   prints the status; the answer is in $(last)
#   j FILE EXPR                 a JSON value of FILE (Python subscript EXPR)
#   jd FILE EXPR                the same as JSON text (lists as ["a"])
#   code / msg                  the last answer's error code / message
echo 0 >"$TMP/q"
next() { q=$(($(cat "$TMP/q") + 1)); echo $q >"$TMP/q"; echo "$TMP/seen/$q"; }
last() { echo "$TMP/seen/$(cat "$TMP/q")"; }
as() {
	$C -o "$(next)" -w '%{http_code}' -H "Authorization: Bearer $1" \
	    -X "$2" ${4:+-d "$4"} "$U$3"
}
j() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$2)" "$1"; }
jd() { python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))$2))" "$1"; }
code() { grep -o '"code":"[a-z_]*"' "$(last)" | cut -d'"' -f4; }
msg() { j "$(last)" '["error"]["message"]'; }

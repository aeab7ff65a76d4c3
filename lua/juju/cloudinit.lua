-- juju.cloudinit: what machine 0 runs. userdata renders the phase-1
-- #cloud-config handed to the cloud (spec 2.9: SSH keys, output
-- redirection, the clean-shutdown unit, the nonce file last; never a
-- secret); script renders the phase-2 bash script run as root over SSH
-- (spec 2.10; docs/cloudinit.md lists every difference from Juju 1.25).
-- Both are deterministic for a given instance config.
local yaml = require("juju.yaml")
local shell = require("juju.shell")
local instancecfg = require("juju.instancecfg")
local agentconf = require("juju.agentconf")

local M = {}

local quote = shell.quote

M.CLEAN_SHUTDOWN_PATH = "/etc/systemd/system/juju-clean-shutdown.service"
M.CLEAN_SHUTDOWN_UNIT = [[
[Unit]
Description=Stop all network interfaces on shutdown
DefaultDependencies=false
After=final.target
ConditionPathExists=/sbin/ifdown

[Service]
Type=oneshot
ExecStart=-/sbin/ifdown -a -v --force
StandardOutput=tty
StandardError=tty

[Install]
WantedBy=final.target
]]

M.APT_PROXY_FILE = "/etc/apt/apt.conf.d/42-juju-proxy-settings"
M.APT_OPTIONS = "--option=Dpkg::Options::=--force-confold --option=Dpkg::options::=--force-unsafe-io --assume-yes --quiet"
M.CURL = "curl -sSfw 'tools from %{url_effective} downloaded: HTTP %{http_code}; time %{time_total}s; "
  .. "size %{size_download} bytes; speed %{speed_download} bytes/s ' --retry 10"
M.AGENT_START_MODES = { auto = true, systemd = true, supervised = true, none = true }

-- ---------------------------------------------------------------------------
-- authorized keys

local KEY_TYPES = {
  ["ssh-rsa"] = true, ["ssh-dss"] = true, ["ssh-ed25519"] = true,
  ["ecdsa-sha2-nistp256"] = true, ["ecdsa-sha2-nistp384"] = true, ["ecdsa-sha2-nistp521"] = true,
  ["sk-ssh-ed25519@openssh.com"] = true, ["sk-ecdsa-sha2-nistp256@openssh.com"] = true,
}

--- The keys of an authorized_keys text, each comment prefixed "Juju:"
--- (a key without comment gets "Juju:sshkey"), as Juju's EnsureJujuComment
--- does; blank lines, comment lines and lines without a key are dropped.
function M.juju_authorized_keys(text)
  local out = {}
  for line in ((text or "") .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("^[ \r]+", ""):gsub("[ \r]+$", "")
    if line ~= "" and line:sub(1, 1) ~= "#" then
      for start, word in line:gmatch("()(%S+)") do
        if KEY_TYPES[word] then
          local prefix = line:sub(1, start - 1)
          local blob, comment = line:sub(start + #word):match("^%s+(%S+)%s*(.-)$")
          if blob then
            if comment == "" then
              comment = "Juju:sshkey"
            elseif comment:sub(1, 5) ~= "Juju:" then
              comment = "Juju:" .. comment
            end
            out[#out + 1] = prefix .. word .. " " .. blob .. " " .. comment
          end
          break
        end
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- phase 1: user data

local function need_string(icfg, field)
  local v = icfg[field]
  if type(v) ~= "string" or v == "" then
    return nil, string.format("invalid machine configuration: missing %s", (field:gsub("_", " ")))
  end
  return v
end

--- The phase-1 #cloud-config text. opts.host_keys = {ed25519 = {private=,
--- public=}} adds cloud-init's ssh_keys so the client can pin the host key
--- it generated. Returns text or nil, message.
function M.userdata(icfg, opts)
  if type(icfg) ~= "table" then error("cloudinit.userdata: instance config table expected", 2) end
  opts = opts or {}
  for _, f in ipairs({ "nonce", "data_dir", "cloud_init_output_log" }) do
    local ok, err = need_string(icfg, f)
    if not ok then return nil, err end
  end
  local runcmd = { "set -xe" }
  local function add(cmds) for _, c in ipairs(cmds) do runcmd[#runcmd + 1] = c end end
  add(shell.text_file(M.CLEAN_SHUTDOWN_PATH, M.CLEAN_SHUTDOWN_UNIT, "644"))
  add({ "/bin/systemctl enable " .. quote(M.CLEAN_SHUTDOWN_PATH) })
  -- Last: its presence tells the client that cloud-init is done.
  add(shell.text_file(icfg.data_dir .. "/nonce.txt", icfg.nonce, "644"))
  local doc = {
    output = { all = "| tee -a " .. quote(icfg.cloud_init_output_log) },
    runcmd = yaml.array(runcmd),
  }
  local keys = M.juju_authorized_keys(icfg.authorized_keys)
  if #keys > 0 then doc.ssh_authorized_keys = yaml.array(keys) end
  local hk = opts.host_keys
  if hk ~= nil then
    local ed = type(hk) == "table" and hk.ed25519
    if type(ed) ~= "table" or type(ed.private) ~= "string" or type(ed.public) ~= "string" then
      error("cloudinit.userdata: opts.host_keys.ed25519 must be {private=, public=}", 2)
    end
    doc.ssh_keys = { ed25519_private = ed.private, ed25519_public = ed.public }
  end
  local text, err = yaml.encode(doc)
  if not text then return nil, err end
  return "#cloud-config\n" .. text
end

-- ---------------------------------------------------------------------------
-- phase 2: the bootstrap script

local function file_url_path(url)
  local p = url:match("^file://(/.*)$")
  if not p then return nil end
  return (p:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Compact JSON of the tools record (downloaded-tools.txt, spec 2.6).
local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function tools_json(t)
  local parts = { '"version":' .. json_string(t.version), '"url":' .. json_string(t.url) }
  if t.sha256 and t.sha256 ~= "" then parts[#parts + 1] = '"sha256":' .. json_string(t.sha256) end
  parts[#parts + 1] = '"size":' .. string.format("%d", math.tointeger(t.size) or 0)
  return "{" .. table.concat(parts, ",") .. "}"
end

--- What `jujud bootstrap-state --params FILE` reads (YAML mapping):
--- env-config, instance-id, hardware, constraints (both omitted when
--- empty), state-store.
function M.bootstrap_params(icfg)
  local p = {
    ["env-config"] = icfg.config,
    ["instance-id"] = icfg.instance_id,
    ["state-store"] = icfg.state_store,
  }
  local hw = instancecfg.format_hardware(icfg.hardware)
  if hw ~= "" then p.hardware = hw end
  local cons = instancecfg.format_constraints(icfg)
  if cons ~= "" then p.constraints = cons end
  -- The instance's addresses as the client knows them: the node does not
  -- need provider credentials to learn them (they are not sent).
  if icfg.addresses and #icfg.addresses > 0 then p.addresses = yaml.array(icfg.addresses) end
  return yaml.ordered(p, { "env-config", "instance-id", "hardware", "constraints", "addresses", "state-store" })
end

-- Every value taken from the instance config becomes one of these
-- variables, so the body of the script does not depend on paths or names.
local function variables(icfg, opts)
  local t = icfg.tools
  local vars = {
    { "DATA_DIR", icfg.data_dir },
    { "LOG_DIR", icfg.log_dir },
    { "CLOUD_INIT_OUTPUT_LOG", icfg.cloud_init_output_log },
    { "MACHINE_ID", icfg.machine_id },
    { "MACHINE_TAG", instancecfg.machine_tag(icfg) },
    { "SERVICE_NAME", icfg.service_name },
    { "AGENT_START", opts.agent_start },
    { "LOG_FLAG", icfg.debug and "--debug" or "--show-log" },
    { "TOOLS_VERSION", t.version },
    { "TOOLS_URL", t.url },
  }
  if opts.tools_file then vars[#vars + 1] = { "TOOLS_FILE", opts.tools_file } end
  vars[#vars + 1] = { "TOOLS_SHA256", t.sha256 }
  vars[#vars + 1] = { "TOOLS_JSON", tools_json(t) }
  local out = {}
  for i, v in ipairs(vars) do out[i] = shell.assign(v[1], v[2]) end
  return out
end

local PACKAGE_MANAGER_LOOP = [[
package_manager_loop() {
    local rc tries=0
    while true; do
        if "$@"; then
            return 0
        else
            rc=$?
        fi
        tries=$((tries + 1))
        if [ "$rc" -eq 100 ] && [ "$tries" -lt 60 ]; then
            sleep 10s
            continue
        fi
        return "$rc"
    done
}]]

local APT_MIRROR = [[
for src in /etc/apt/sources.list /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/ubuntu.sources; do
    [ -f "$src" ] || continue
    old_mirror=$(awk '/^deb .* main/ {print $2; exit} /^URIs:/ {print $2; exit}' "$src")
    if [ -n "$old_mirror" ] && [ "$old_mirror" != "$new_mirror" ]; then
        sed -i "s,$old_mirror,$new_mirror,g" "$src"
        old_prefix=/var/lib/apt/lists/$(echo "$old_mirror" | sed 's,.*://,,' | sed 's,/$,,' | tr / _)
        new_prefix=/var/lib/apt/lists/$(echo "$new_mirror" | sed 's,.*://,,' | sed 's,/$,,' | tr / _)
        for old in "$old_prefix"_*; do
            [ -e "$old" ] || continue
            mv "$old" "$new_prefix${old#"$old_prefix"}"
        done
    fi
done]]

local function apt_proxy_content(p)
  local lines = {}
  for _, k in ipairs({ "http", "https", "ftp" }) do
    if p[k] and p[k] ~= "" then
      lines[#lines + 1] = string.format('Acquire::%s::Proxy "%s";', k, p[k])
    end
  end
  return table.concat(lines, "\n")
end

local function package_commands(icfg, add)
  local proxy = apt_proxy_content(icfg.apt_proxy or {})
  local mirror = icfg.apt_mirror or ""
  local install = icfg.enable_package_install and #(icfg.packages or {}) > 0
  if proxy == "" and mirror == "" and not icfg.enable_os_refresh_update and not icfg.enable_os_upgrade
    and not install then
    return
  end
  add("if command -v apt-get > /dev/null 2>&1; then")
  add("export DEBIAN_FRONTEND=noninteractive")
  if proxy ~= "" then add(string.format("printf '%%s\\n' %s > %s", quote(proxy), M.APT_PROXY_FILE)) end
  if mirror ~= "" then
    add("echo " .. quote("Changing apt mirror to " .. mirror) .. " >&9")
    add(shell.assign("new_mirror", mirror))
    add(APT_MIRROR)
  end
  add(PACKAGE_MANAGER_LOOP)
  if icfg.enable_os_refresh_update then
    add("echo 'Running apt-get update' >&9")
    add("package_manager_loop apt-get " .. M.APT_OPTIONS .. " update")
  end
  if icfg.enable_os_upgrade then
    add("echo 'Running apt-get upgrade' >&9")
    add("package_manager_loop apt-get " .. M.APT_OPTIONS .. " upgrade")
  end
  if install then
    for _, pkg in ipairs(icfg.packages) do
      add("echo " .. quote("Installing package: " .. pkg) .. " >&9")
      add("package_manager_loop apt-get " .. M.APT_OPTIONS .. " install " .. quote(pkg))
    end
  end
  add("else")
  add("echo 'apt-get not found: package management skipped'")
  add("fi")
end

local function proxy_commands(icfg, add)
  add([[([ ! -e /home/ubuntu/.profile ] || grep -q '.juju-proxy' /home/ubuntu/.profile) || ]]
    .. [[printf '\n# Added by juju\n[ -f "$HOME/.juju-proxy" ] && . "$HOME/.juju-proxy"\n' >> /home/ubuntu/.profile]])
  local p = icfg.proxy or {}
  local exports = {}
  for _, k in ipairs({ "http", "https", "ftp", "no" }) do
    local v = p[k == "no" and "no_proxy" or k]
    if v and v ~= "" then
      exports[#exports + 1] = "export " .. k .. "_proxy=" .. quote(v)
      exports[#exports + 1] = "export " .. k:upper() .. "_PROXY=" .. quote(v)
    end
  end
  if #exports == 0 then return end
  for _, e in ipairs(exports) do add(e) end
  add("if id ubuntu > /dev/null 2>&1 && [ -d /home/ubuntu ]; then")
  add("    printf '%s\\n' " .. quote(table.concat(exports, "\n")) .. " > /home/ubuntu/.juju-proxy")
  add("    chown ubuntu:ubuntu /home/ubuntu/.juju-proxy")
  add("fi")
end

local function fetch_commands(icfg, opts, add)
  if opts.tools_file then
    add([[echo "Fetching tools: cp $TOOLS_FILE \$bin/tools.tar.gz <[$TOOLS_URL]>" >&9]])
    add([[cp -- "$TOOLS_FILE" "$bin/tools.tar.gz"]])
    return
  end
  local curl = M.CURL .. (icfg.disable_ssl_hostname_verification and " --insecure" or "")
  add([[echo "Fetching tools: ]] .. curl .. [[ -o \$bin/tools.tar.gz <[$TOOLS_URL]>" >&9]])
  add("downloaded=no")
  add("for n in $(seq 5); do")
  add([[    printf 'Attempt %s to download tools from %s...\n' "$n" "$TOOLS_URL"]])
  add("    if " .. curl .. [[ -o "$bin/tools.tar.gz" "$TOOLS_URL"; then]])
  add([[        echo "Tools downloaded successfully."]])
  add("        downloaded=yes")
  add("        break")
  add("    fi")
  add([[    if [ "$n" -lt 5 ]; then]])
  add([[        echo "Download failed..... wait 15s"]])
  add("        sleep 15")
  add("    fi")
  add("done")
  add([[if [ "$downloaded" != yes ]; then]])
  add([[    echo "Tools download failed: $TOOLS_URL" >&9]])
  add("    exit 1")
  add("fi")
end

local EXEC_START = [[
cat > "$init_dir/exec-start.sh" << EOF
#!/bin/bash
# Ensure log files are properly protected
touch '$LOG_DIR/$MACHINE_TAG.log'
if [ "\$(id -u)" = 0 ] && id syslog > /dev/null 2>&1; then chown syslog:syslog '$LOG_DIR/$MACHINE_TAG.log'; fi
chmod 0600 '$LOG_DIR/$MACHINE_TAG.log'
exec '$DATA_DIR/tools/$MACHINE_TAG/jujud' machine --data-dir '$DATA_DIR' --machine-id '$MACHINE_ID' $LOG_FLAG >> '$LOG_DIR/$MACHINE_TAG.log' 2>&1
EOF
chmod 0755 "$init_dir/exec-start.sh"
cat > "$init_dir/$SERVICE_NAME.service" << EOF
[Unit]
Description=juju agent for $MACHINE_TAG
After=network-online.target
Wants=network-online.target

[Service]
LimitNOFILE=20000
ExecStart=$init_dir/exec-start.sh
Restart=on-failure
TimeoutSec=300

[Install]
WantedBy=multi-user.target
EOF]]

-- The start hook: a systemd unit when systemd is PID 1, else the agent
-- under a restart loop in the background (pid in <init dir>/<name>.pid).
local START_AGENT = [[
start_mode=$AGENT_START
if [ "$start_mode" = auto ]; then
    if [ -d /run/systemd/system ]; then start_mode=systemd; else start_mode=supervised; fi
fi
case "$start_mode" in
systemd)
    systemctl link "$init_dir/$SERVICE_NAME.service"
    systemctl daemon-reload
    systemctl enable "$SERVICE_NAME.service"
    systemctl restart "$SERVICE_NAME.service"
    ;;
supervised)
    # A restart loop in its own session (process group = its pid), so
    # stopping the agent is one signal to the group.
    setsid bash -c 'trap "" HUP; until "$1"; do sleep 5; done' supervise "$init_dir/exec-start.sh" \
        < /dev/null > /dev/null 2>&1 9>&- &
    echo $! > "$init_dir/$SERVICE_NAME.pid"
    ;;
*)
    echo "Agent start disabled: $init_dir/exec-start.sh not started"
    ;;
esac]]

local function secret_file(add, path_expr, body)
  add("(")
  add("umask 077")
  add(shell.heredoc("cat > " .. path_expr, body))
  add(")")
  add("chmod 0600 " .. path_expr)
end

--- The phase-2 bash script for a verified bootstrap instance config. opts:
--- agent_start ("auto" default: systemd when it is PID 1, else supervised;
--- "systemd", "supervised", "none"; icfg.agent_start is the fallback),
--- tools_file (where a file:// tools tarball is on the machine; default
--- the URL's path), join (another state server: no bootstrap-state; its
--- agent joins the state). Returns text or nil, message.
function M.script(icfg, opts)
  if type(icfg) ~= "table" then error("cloudinit.script: instance config table expected", 2) end
  local ok, err = instancecfg.verify(icfg)
  if not ok then return nil, err end
  opts = opts or {}
  local o = { agent_start = opts.agent_start or icfg.agent_start or "auto", tools_file = opts.tools_file }
  if not M.AGENT_START_MODES[o.agent_start] then
    error(string.format("cloudinit.script: unknown agent_start %q", tostring(o.agent_start)), 2)
  end
  if icfg.tools.url:match("^file://") then
    o.tools_file = o.tools_file or file_url_path(icfg.tools.url)
  else
    o.tools_file = nil
  end
  local conf = agentconf.render(icfg)
  -- A joining state server (opts.join, juju.ha) has no bootstrap-state:
  -- its agent joins the state that machine 0 made.
  local params, perr = true, nil
  if not opts.join then params, perr = yaml.encode(M.bootstrap_params(icfg)) end
  if not params then return nil, "cannot encode bootstrap parameters: " .. tostring(perr) end

  local lines = {}
  local function add(s) lines[#lines + 1] = s end
  add("#!/bin/bash")
  add("# Juju bootstrap, phase 2: installs and starts the machine agent. Run as root.")
  add("dump_file() {")
  add("    code=$?")
  add([[    if [ "$code" -ne 0 ] && [ -e "$CLOUD_INIT_OUTPUT_LOG" ]; then]])
  add([[        cat "$CLOUD_INIT_OUTPUT_LOG" >&2]])
  add("    fi")
  add([[    exit "$code"]])
  add("}")
  add("trap dump_file EXIT")
  add("set -e")
  add("# The instance configuration: the only lines that depend on paths and names.")
  for _, v in ipairs(variables(icfg, o)) do add(v) end
  add("test -e /proc/self/fd/9 || exec 9>&2")
  add([[mkdir -p "$(dirname "$CLOUD_INIT_OUTPUT_LOG")"]])
  -- Not world-readable (issue 14.13): 0600, or under /var/log 0640 root:adm
  -- as syslog's own logs, when run as root on a host with an adm group.
  add([[(umask 077; touch "$CLOUD_INIT_OUTPUT_LOG") && chmod 0600 "$CLOUD_INIT_OUTPUT_LOG"]])
  add([[case "$CLOUD_INIT_OUTPUT_LOG" in /var/log/*) if [ "$(id -u)" = 0 ] && getent group adm > /dev/null; then]])
  add([[    chgrp adm "$CLOUD_INIT_OUTPUT_LOG" && chmod 0640 "$CLOUD_INIT_OUTPUT_LOG"; fi;; esac]])
  add("(")
  add([[echo "Logging to $CLOUD_INIT_OUTPUT_LOG on remote host" >&9]])
  package_commands(icfg, add)
  proxy_commands(icfg, add)
  add([[mkdir -p "$DATA_DIR/locks"]])
  add([[if [ "$(id -u)" = 0 ] && id ubuntu > /dev/null 2>&1; then chown ubuntu:ubuntu "$DATA_DIR/locks"; fi]])
  add([[mkdir -p "$LOG_DIR"]])
  add([[if [ "$(id -u)" = 0 ] && id syslog > /dev/null 2>&1; then chown syslog:adm "$LOG_DIR"; fi]])
  add([[bin="$DATA_DIR/tools/$TOOLS_VERSION"]])
  add([[mkdir -p "$bin"]])
  fetch_commands(icfg, o, add)
  add([[if ! printf '%s  %s\n' "$TOOLS_SHA256" "$bin/tools.tar.gz" | sha256sum --check --status; then]])
  add("    echo 'Tools checksum mismatch' >&9")
  add("    exit 1")
  add("fi")
  add([[tar zxf "$bin/tools.tar.gz" -C "$bin"]])
  add([[printf '%s' "$TOOLS_JSON" > "$bin/downloaded-tools.txt"]])
  add([[agent_dir="$DATA_DIR/agents/$MACHINE_TAG"]])
  add([[mkdir -p "$agent_dir"]])
  secret_file(add, [["$agent_dir/agent.conf"]], conf)
  if not opts.join then
    secret_file(add, [["$DATA_DIR/bootstrap-params"]], params)
    add("echo 'Bootstrapping Juju machine agent' >&9")
    add([["$bin/jujud" bootstrap-state --data-dir "$DATA_DIR" --params "$DATA_DIR/bootstrap-params" "$LOG_FLAG" < /dev/null]])
    add([[rm -f "$DATA_DIR/bootstrap-params"]])
  end
  add([[ln -sfn "$TOOLS_VERSION" "$DATA_DIR/tools/$MACHINE_TAG"]])
  add([[echo "Starting Juju machine agent ($SERVICE_NAME)" >&9]])
  add([[init_dir="$DATA_DIR/init/$SERVICE_NAME"]])
  add([[mkdir -p "$init_dir"]])
  add(EXEC_START)
  add(START_AGENT)
  add([[rm -f "$bin/tools.tar.gz"]])
  add([[) < /dev/null >> "$CLOUD_INIT_OUTPUT_LOG" 2>&1]])
  return table.concat(lines, "\n") .. "\n"
end

return M

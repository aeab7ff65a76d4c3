-- juju.shell: building POSIX shell text safely. Everything that reaches a
-- generated script (cloud-init runcmds, the phase-2 bootstrap script) goes
-- through these helpers, so a value can never break out of its word.
local M = {}

--- Single-quotes s for POSIX shells; an embedded ' becomes '"'"' (Juju's
--- utils.ShQuote), so the result is one word whatever s holds.
function M.quote(s)
  if type(s) ~= "string" then error("shell.quote: string expected, got " .. type(s), 2) end
  return "'" .. s:gsub("'", [['"'"']]) .. "'"
end

--- Quotes each element of a list and joins them with spaces.
function M.join(words)
  local out = {}
  for i, w in ipairs(words) do out[i] = M.quote(w) end
  return table.concat(out, " ")
end

--- `NAME='value'`; the name must be a valid shell identifier.
function M.assign(name, value)
  if type(name) ~= "string" or not name:match("^[%a_][%w_]*$") then
    error(string.format("shell.assign: invalid variable name %q", tostring(name)), 2)
  end
  return name .. "=" .. M.quote(value)
end

local function has_line(text, line)
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    if l == line then return true end
  end
  return false
end

--- A heredoc terminator that does not occur as a line of body: "EOF", or
--- "EOF_1", "EOF_2"... when the body itself holds such a line.
function M.heredoc_delimiter(body)
  local word, n = "EOF", 0
  while has_line(body, word) do
    n = n + 1
    word = "EOF_" .. n
  end
  return word
end

--- Lines of a quoted heredoc feeding body to command: `command << 'EOF'`,
--- the body verbatim (no expansion), the terminator. Returns one string
--- without a trailing newline.
function M.heredoc(command, body)
  if body:sub(-1) ~= "\n" then body = body .. "\n" end
  local delim = M.heredoc_delimiter(body)
  return command .. " << '" .. delim .. "'\n" .. body .. delim
end

--- Juju's text-file idiom (AddRunTextFile): create the file with its mode
--- through install(1), then write the content with printf. Returns the two
--- command strings.
function M.text_file(path, content, mode)
  return {
    string.format("install -D -m %s /dev/null %s", mode or "644", M.quote(path)),
    string.format("printf '%%s\\n' %s > %s", M.quote(content), M.quote(path)),
  }
end

return M

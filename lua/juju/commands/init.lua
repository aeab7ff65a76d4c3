-- juju init (alias generate-config): writes a boilerplate environments.yaml.
local fs = require("juju.fs")
local boilerplate = require("juju.boilerplate")

local M = {
  name = "init",
  args = "[options]",
  purpose = "generate boilerplate configuration for juju environments",
  aliases = { "generate-config" },
  doc = "Writes $JUJU_HOME/environments.yaml (mode 0600) with an entry for each provider this engine has.\n"
    .. "An existing file is kept unless -f is given.",
}

function M.flags(fs_)
  fs_:add { names = { "f" }, kind = "bool", key = "force",
    help = "force overwriting environments.yaml file even if it exists (ignored if --show flag specified)" }
  fs_:add { names = { "show" }, kind = "bool", help = "print the generated configuration data to stdout instead of writing it to a file" }
end

function M.run(_, ctx, opts)
  local home, herr = ctx:juju_home()
  if not home then return nil, herr end
  local text = boilerplate.render(boilerplate.available_providers(home))
  if opts.show then
    ctx:write_stdout(text)
    return true
  end
  local path = home .. "/environments.yaml"
  if fs.exists(path) and not opts.force then
    ctx:printf("A juju environment configuration already exists.")
    ctx:printf("It will not be overwritten.")
    return nil, string.format("%s already exists; use -f to overwrite it", path)
  end
  local ok, err = fs.mkdir_p(home, tonumber("700", 8))
  if not ok then return nil, string.format("cannot create %s: %s", home, err) end
  ok, err = fs.write_atomic(path, text, tonumber("600", 8))
  if not ok then return nil, string.format("cannot write %s: %s", path, err) end
  ctx:printf("A boilerplate environment configuration file has been written to %s.", path)
  ctx:printf("Edit the file to configure your juju environment and run bootstrap.")
  return true
end

return M

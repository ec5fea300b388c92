# lit configuration for the cordon-gates pass tests. Run through ctest
# (compiler_pass_lit), which points lit at the generated lit.site.cfg.py.
import os

import lit.formats

config.name = "cordon-gates"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".c", ".cc", ".ll"]
config.test_source_root = os.path.dirname(__file__)
config.excludes = ["Inputs"]

config.environment["PATH"] = os.pathsep.join([config.llvm_tools_dir, config.environment.get("PATH", "")])
include = os.path.join(config.cordon_source_dir, "include")
# cordon/version.h is generated into the build tree.
generated = os.path.join(config.cordon_binary_dir, "include")
config.substitutions.append(("%plugin", config.cordon_plugin))
config.substitutions.append(("%clangxx", "%s -I%s -I%s" % (config.clangxx, include, generated)))
config.substitutions.append(("%clang", "%s -I%s -I%s" % (config.clang, include, generated)))
config.substitutions.append(("%opt", os.path.join(config.llvm_tools_dir, "opt")))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))

// The Python extension module clue_ext._C. Importing it loads this library,
// whose static initialisers register the ops with the dispatcher; the module
// itself is empty. Built by setup.py only: the CMake library has no Python.

#include <Python.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

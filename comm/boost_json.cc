// Compiles Boost.JSON once for the whole project (header-only mode: the GPU machines' Boost has
// the headers but no compiled libboost_json). Everything else includes <boost/json.hpp>.
#include <boost/json/src.hpp>

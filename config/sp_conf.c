/* placeholder: implemented with the foundation issue */
#include "sp_config.h"

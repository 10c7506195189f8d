/* The shared-library build of spimring.h (libspimring.so): for LabVIEW, Java (Panama/JNA), ctypes. */
#define SPIMRING_IMPLEMENTATION
#include "spimring.h"

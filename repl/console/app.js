// Eddy console

"""`slap-data debian`: a real-audio corpus built from Debian 12's sound packages."""

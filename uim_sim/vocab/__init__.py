"""People and words shared by worlds, corpora and probes: Bertrand & Mullainathan
names (`names`), occupations and resumes (`jobs`), identity terms and dialect markers
(`identity`), community news (`news`). Imports nothing else of uim_sim."""

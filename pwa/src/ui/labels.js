// French labels of the protocol's codes.
export const OUTCOMES = [['talked', 'Échange'], ['absent', 'Absent'], ['refused', 'Refus']];
export const NEEDS = [
  ['isolement', 'Isolement'], ['mobilite', 'Mobilité'], ['courses', 'Courses'], ['numerique', 'Numérique'],
  ['emploi', 'Emploi'], ['budget', 'Budget'], ['logement', 'Logement'], ['lien_social', 'Lien social'],
  ['autre', 'Autre'],
];
export const ROLES = [['contributor', 'Contributeur'], ['volunteer', 'Bénévole'], ['beneficiary', 'Bénéficiaire']];
export const CATEGORIES = [['adults', 'Adultes'], ['children', 'Enfants'], ['seniors', 'Seniors']];
export const label = (pairs, code) => (pairs.find(([c]) => c === code) || [code, code])[1];
export const OP_LABELS = {
  'visit.create': 'Visite', 'visit.delete': 'Suppression de visite', 'resident.create': 'Nouvel habitant',
  'resident.update': "Fiche d'habitant", 'resident.delete': "Suppression d'habitant",
  'household.update': 'Notes du logement', 'engagement.create': 'Engagement', 'engagement.update': 'Engagement',
  'attendance.create': 'Pointage', 'attendance.delete': 'Pointage annulé', 'headcount.create': 'Comptage',
};
